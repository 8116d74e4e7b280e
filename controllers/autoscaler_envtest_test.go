package controllers

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Beside an HPA: there is no HPA controller here, so the test scales
// spec.replicas through the scale subresource as the HPA would.

func autoscaled(ts *pacerv1.TunedService) {
	ts.Spec.Replicas = ptr.To[int32](2)
	ts.Spec.Database.Pool.MaxConns = 2
	ts.Spec.Database.MaxTotalConnections = ptr.To[int32](12)
	ts.Spec.Tuning.Mode = pacerv1.TuningAuto
	ts.Spec.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
	ts.Spec.Tuning.Bounds = pacerv1.TuningBounds{
		Replicas:     &pacerv1.Int32Range{Min: 1, Max: 4}, // 4 × (2 + 1) = 12
		PoolMaxConns: &pacerv1.Int32Range{Min: 2, Max: 4},
	}
}

func hpaFor(ns, name, apiVersion, kind, target string, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: apiVersion, Kind: kind, Name: target},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    maxReplicas,
		},
	}
}

// activate marks hpa as having scaled from its metrics, as the HPA
// controller's first sync does.
func activate(t *testing.T, c client.Client, hpa *autoscalingv2.HorizontalPodAutoscaler) {
	t.Helper()
	hpa.Status.DesiredReplicas = 2
	hpa.Status.Conditions = []autoscalingv2.HorizontalPodAutoscalerCondition{{
		Type: autoscalingv2.ScalingActive, Status: corev1.ConditionTrue, Reason: "ValidMetricFound", LastTransitionTime: metav1.Now(),
	}}
	if err := c.Status().Update(context.Background(), hpa); err != nil {
		t.Fatalf("mark the HPA active: %v", err)
	}
}

func TestAnHPAOwnsReplicasWithinTheConnectionBudget(t *testing.T) {
	s, g, ts := startCase(t, "scaled", autoscaled)
	ns := ts.Namespace
	ctx := context.Background()
	hpa := hpaFor(ns, "scaled", pacerv1.GroupVersion.String(), "TunedService", "scaled", 4)
	create(t, s.client, hpa)

	// Until the HPA has scaled from its metrics, the replicas stay Pacer's.
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionAutoscaled)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("WaitingForHPA"))
	}, eventually, poll).Should(Succeed())
	activate(t, s.client, hpa)

	// 4 × (2 + 1) = 12 fits: replicas are the HPA's, said once.
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionAutoscaled)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("ReplicasHandedToHPA"))
		g.Expect(c.Message).To(ContainSubstring("workers, pool and cache only"))
		g.Expect(reasons(eventsAbout(g, s.client, ns, "scaled"))).To(ContainElement("ReplicasHandedToHPA"))
	}, eventually, poll).Should(Succeed())

	// The HPA may now go to 6: 6 × 3 = 18 > 12 is announced. Asking for 5
	// (5 × 3 = 15) through the scale subresource is refused by the API
	// server's budget rule, as an HPA's rescale would be, so no pod past
	// the budget is ever asked for.
	g.Expect(s.client.Patch(ctx, hpa, client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"maxReplicas":6}}`)))).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionAutoscaled)
		g.Expect(c.Reason).To(Equal("HPAExceedsBudget"))
		g.Expect(c.Message).To(And(ContainSubstring("maxReplicas 6"), ContainSubstring("replicas beyond 4 will be capped")))
	}, eventually, poll).Should(Succeed())
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scaled"}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}}
	err := s.client.SubResource("scale").Update(ctx, withKey(&pacerv1.TunedService{}, ts), client.WithSubResourceBody(scale))
	g.Expect(err).To(MatchError(ContainSubstring("health connection")))
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scaled"}}
	g.Consistently(func(g Gomega) {
		g.Expect(get(s.client, d)()).To(Succeed())
		g.Expect(*d.Spec.Replicas).To(BeNumerically("<=", 4))
	}, 2*time.Second, poll).Should(Succeed())
}

// An HPA on the Deployment fights the reconciler: it is reported, and
// Pacer keeps rendering replicas.
func TestAnHPAOnTheDeploymentIsAMisconfiguration(t *testing.T) {
	s, g, ts := startCase(t, "fought", autoscaled)
	create(t, s.client, hpaFor(ts.Namespace, "fought", "apps/v1", "Deployment", "fought", 4))
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionAutoscaled)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("HPAOnDeployment"))
		d := condition(g, s.client, ts, pacerv1.ConditionDegraded)
		g.Expect(d.Reason).To(Equal("HPAOnDeployment"))
		g.Expect(d.Message).To(ContainSubstring("kind TunedService"))
		g.Expect(reasons(eventsAbout(g, s.client, ts.Namespace, "fought"))).To(ContainElement("HPAOnDeployment"))
	}, eventually, poll).Should(Succeed())
}
