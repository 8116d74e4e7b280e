package controllers

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Generous: the suite shares two cores with other test packages.
const (
	eventually = 30 * time.Second
	poll       = 100 * time.Millisecond
)

// startCase starts a parallel test with its own namespace, the database
// Secret and a TunedService created in it.
func startCase(t *testing.T, name string, opts ...tsOption) (*testSuite, *WithT, *pacerv1.TunedService) {
	t.Helper()
	t.Parallel()
	s := startSuite(t)
	ns := s.namespace(t)
	ts := newTunedService(ns, name, opts...)
	create(t, s.client, newSecret(ns, "db"), ts)
	return s, NewWithT(t), ts
}

// tsOption changes a TunedService under construction.
type tsOption func(*pacerv1.TunedService)

// newTunedService is the three-line spec a user writes: a name and the
// database Secret; everything else comes from the API server's defaults.
func newTunedService(ns, name string, opts ...tsOption) *pacerv1.TunedService {
	ts := &pacerv1.TunedService{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: pacerv1.TunedServiceSpec{
			Database: pacerv1.DatabaseSpec{
				URLSecretRef: pacerv1.SecretKeyRef{Name: "db", Key: "url"},
			},
		},
	}
	for _, o := range opts {
		o(ts)
	}
	return ts
}

func withReplicas(n int32) tsOption {
	return func(ts *pacerv1.TunedService) { ts.Spec.Replicas = &n }
}

func newSecret(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		StringData: map[string]string{"url": "postgres://pacer:s3cret-value@db.example:5432/pacer"},
	}
}

func create(t *testing.T, c client.Client, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := c.Create(context.Background(), o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
}

// get reads obj's current state into it, returning the error for Eventually.
func get(c client.Client, obj client.Object) func() error {
	return func() error {
		return c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj)
	}
}

// condition returns the condition of type t once the status has one for
// the TunedService's current generation.
func condition(g Gomega, c client.Client, ts *pacerv1.TunedService, t string) metav1.Condition {
	cur := &pacerv1.TunedService{}
	g.Expect(c.Get(context.Background(), client.ObjectKeyFromObject(ts), cur)).To(Succeed())
	cond := meta.FindStatusCondition(cur.Status.Conditions, t)
	g.Expect(cond).NotTo(BeNil(), "condition %s", t)
	g.Expect(cond.ObservedGeneration).To(Equal(cur.Generation), "condition %s is stale", t)
	return *cond
}

// events lists the events.k8s.io Events about the object named name in ns.
func eventsAbout(g Gomega, c client.Client, ns, name string) []eventsv1.Event {
	var list eventsv1.EventList
	g.Expect(c.List(context.Background(), &list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e)
		}
	}
	return out
}

func reasons(evs []eventsv1.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Reason
	}
	return out
}

// reconcileCount sums controller-runtime's reconcile counter for the
// TunedService controller: the operator's own record of passes run.
func reconcileCount(t *testing.T) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "controller_runtime_reconcile_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "controller" && l.GetValue() == "tunedservice" {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

func toJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
