package controllers

import (
	"context"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/metrics"
	"github.com/pacer-dev/pacer/controllers/observe"
)

// A ConfigMap of the config's name that Pacer does not own stops the pass
// before the Deployment, which would mount it; the problem is announced
// once, and retries add nothing to status.history.
func TestForeignConfigMapHoldsBackTheDeployment(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	foreign := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "held-config"},
		Data:       map[string]string{"config.yaml": "someone else's"},
	}
	create(t, s.client, foreign, newSecret(ns, "db"))
	ts := newTunedService(ns, "held")
	create(t, s.client, ts)

	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("NotOwned"))
		g.Expect(c.Message).To(ContainSubstring("ConfigMap held-config"))
		g.Expect(c.Message).To(ContainSubstring("Deployment is not rendered"))
	}, eventually, poll).Should(Succeed())
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "held"}}
	g.Expect(get(s.client, dep)()).To(Satisfy(apierrors.IsNotFound), "no Deployment mounting a foreign ConfigMap")

	// Retried passes (run here, so they are counted) announce nothing new.
	rec := events.NewFakeRecorder(16)
	r := directReconciler(t, s, rec)
	for range 3 {
		_, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(ts)})
		g.Expect(err).NotTo(HaveOccurred())
	}
	g.Expect(drain(rec)).To(BeEmpty(), "the problem is already in status: no Warning again")
	g.Expect(get(s.client, dep)()).To(Satisfy(apierrors.IsNotFound))
}

// directReconciler is a second reconciler, run by the test itself, with
// the manager's permissions' worth of clients and a recorder to inspect.
func directReconciler(t *testing.T, s *testSuite, rec events.EventRecorder) *TunedServiceReconciler {
	r := &TunedServiceReconciler{
		Client:    s.client,
		APIReader: s.client,
		Recorder:  rec,
		Metrics:   metrics.NewSources(metrics.SourcesOptions{}),
		applier:   newApplier(s.client),
	}
	r.observers = observe.New(observe.Options[observed]{Observe: r.observeService})
	t.Cleanup(r.observers.StopAll)
	return r
}

func drain(rec *events.FakeRecorder) []string {
	var out []string
	for {
		select {
		case e := <-rec.Events:
			if strings.HasPrefix(e, corev1.EventTypeWarning) {
				out = append(out, e)
			}
		default:
			return out
		}
	}
}

// A PodDisruptionBudget of the service's name that Pacer does not own is
// in the way only once the service wants a budget (more than one pod).
func TestForeignBudgetMattersOnlyWhenABudgetIsWanted(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	one := intstr.FromInt32(1)
	foreign := &policyv1.PodDisruptionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "budgeted"},
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable: &one,
			Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "other"}},
		},
	}
	create(t, s.client, foreign, newSecret(ns, "db"))
	ts := newTunedService(ns, "budgeted")
	create(t, s.client, ts)

	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse), c.Message)
	}, eventually, poll).Should(Succeed())

	patchSpec(t, s.client, ts, func(ts *pacerv1.TunedService) { ts.Spec.Replicas = ptr.To[int32](2) })
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionDegraded)
		g.Expect(c.Reason).To(Equal("NotOwned"))
		g.Expect(c.Message).To(ContainSubstring("PodDisruptionBudget budgeted"))
	}, eventually, poll).Should(Succeed())
	after := &policyv1.PodDisruptionBudget{}
	g.Expect(s.client.Get(context.Background(), client.ObjectKeyFromObject(foreign), after)).To(Succeed())
	g.Expect(after.OwnerReferences).To(BeEmpty())
}
