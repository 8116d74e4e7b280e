package controllers

import (
	"context"
	"fmt"
	"strings"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch

// autoscaler is a HorizontalPodAutoscaler that targets a TunedService
// (through its scale subresource) or its Deployment.
type autoscaler struct {
	name         string
	onDeployment bool
	min, max     int32
	// active is true once the HPA has computed a scale from its metrics
	// (its ScalingActive condition is True). Before that it has written
	// nothing to spec.replicas, which still holds the user's value.
	active bool
}

// findAutoscaler looks for an HPA whose scaleTargetRef is the TunedService
// or its Deployment (which has the TunedService's name). One on the
// TunedService wins: it is the right way round.
func (r *TunedServiceReconciler) findAutoscaler(ctx context.Context, s *scope) error {
	var list autoscalingv2.HorizontalPodAutoscalerList
	if err := r.Client.List(ctx, &list, client.InNamespace(s.ts.Namespace)); err != nil {
		return fmt.Errorf("list HorizontalPodAutoscalers: %w", err)
	}
	for _, h := range list.Items {
		ref := h.Spec.ScaleTargetRef
		if ref.Name != s.ts.Name || !h.DeletionTimestamp.IsZero() {
			continue
		}
		gv, _ := schema.ParseGroupVersion(ref.APIVersion)
		a := &autoscaler{name: h.Name, min: ptr.Deref(h.Spec.MinReplicas, 1), max: h.Spec.MaxReplicas, active: hpaActive(&h)}
		switch {
		case ref.Kind == "TunedService" && gv.Group == pacerv1.GroupVersion.Group:
			s.hpa = a
			return nil
		case ref.Kind == "Deployment" && gv.Group == "apps":
			a.onDeployment = true
			s.hpa = a
		}
	}
	if a := s.hpa; a != nil && a.onDeployment {
		s.problems = append(s.problems, problem{reason: "HPAOnDeployment", message: fmt.Sprintf(
			"HorizontalPodAutoscaler %q scales the Deployment %s, whose replicas Pacer renders: every scale it makes is undone. "+
				"Point its scaleTargetRef at the TunedService (apiVersion %s, kind TunedService, name %s) instead",
			a.name, s.ts.Name, pacerv1.GroupVersion, s.ts.Name)})
	}
	return nil
}

// handsReplicasToHPA reports whether an HPA on the TunedService owns its
// replicas: the tuner then tunes workers, pool and cache only, and the
// replicas follow spec.replicas, which the HPA writes. An HPA takes them
// once it is active, or once it had them (Autoscaled is True): until it
// has scaled from its metrics, spec.replicas is still the user's value,
// and rendering it would drop the pods the tuner had added (2 → 1 for
// about 30 s in the shared-budget e2e).
func (s *scope) handsReplicasToHPA() bool {
	return s.hpa != nil && !s.hpa.onDeployment &&
		(s.hpa.active || meta.IsStatusConditionTrue(s.before.Status.Conditions, pacerv1.ConditionAutoscaled))
}

// hpaActive says whether an HPA has computed a scale from its metrics.
func hpaActive(h *autoscalingv2.HorizontalPodAutoscaler) bool {
	for _, c := range h.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// fitAutoscaled keeps the replicas an HPA asks for within the connection
// budget: the pool shrinks first (not below its smallest), then, if the
// HPA's replicas cannot fit even at the smallest pool, the rendered
// replicas are capped. It sets the Autoscaled condition and announces
// what changed in it.
func (r *TunedServiceReconciler) fitAutoscaled(_ context.Context, s *scope) error {
	if !s.handsReplicasToHPA() {
		switch {
		case s.hpa == nil:
		case s.hpa.onDeployment:
			s.autoscaled = &metav1.Condition{Status: metav1.ConditionFalse, Reason: "HPAOnDeployment",
				Message: fmt.Sprintf("HorizontalPodAutoscaler %q targets the Deployment, not the TunedService: Pacer keeps rendering replicas", s.hpa.name)}
		default:
			s.autoscaled = &metav1.Condition{Status: metav1.ConditionFalse, Reason: "WaitingForHPA",
				Message: fmt.Sprintf("HorizontalPodAutoscaler %q has not scaled from its metrics yet (ScalingActive is not True): Pacer keeps the %d replicas in effect until it has", s.hpa.name, s.settings.Replicas)}
		}
		return nil
	}
	a := s.hpa
	limit := connectionLimit(s.ts, s.allocation)
	smallest := smallestPool(s)
	c := &metav1.Condition{Status: metav1.ConditionTrue, Reason: "ReplicasHandedToHPA", Message: fmt.Sprintf(
		"HorizontalPodAutoscaler %q scales replicas (%d–%d); Pacer tunes workers, pool and cache only", a.name, a.min, a.max)}
	if limit > 0 && tuning.WorstCaseConnections(a.max, smallest) > int64(limit) {
		c.Reason = "HPAExceedsBudget"
		c.Message += fmt.Sprintf("; its maxReplicas %d × (pool %d + 1) = %d exceeds the connection budget %d: replicas beyond %d will be capped",
			a.max, smallest, tuning.WorstCaseConnections(a.max, smallest), limit, int64(limit)/tuning.PodConnections(smallest))
	}
	if wanted, capped := capToBudget(&s.settings, limit, smallest); capped {
		c.Reason = "DatabaseBound"
		c.Message += fmt.Sprintf("; the HPA's %d replicas × (pool %d + 1) exceed the connection budget %d: %d replicas rendered",
			wanted, smallest, limit, s.settings.Replicas)
	}
	s.autoscaled = c
	return nil
}

// capToBudget shrinks the pool, then the replicas, until the settings'
// connections fit limit. It reports the replicas asked for when it capped them.
func capToBudget(set *pacerv1.Settings, limit, smallestPool int32) (int32, bool) {
	if limit <= 0 || set.Replicas <= 0 || tuning.WorstCaseConnections(set.Replicas, set.PoolMaxConns) <= int64(limit) {
		return 0, false
	}
	perPod := int64(limit) / int64(set.Replicas)
	if pool := int32(perPod - tuning.HealthPoolConns); pool >= max(smallestPool, 1) {
		set.PoolMaxConns = min(set.PoolMaxConns, pool)
		set.PoolMinConns = min(set.PoolMinConns, set.PoolMaxConns)
		return 0, false
	}
	set.PoolMaxConns = max(min(set.PoolMaxConns, smallestPool), 1)
	set.PoolMinConns = min(set.PoolMinConns, set.PoolMaxConns)
	wanted := set.Replicas
	set.Replicas = int32(int64(limit) / tuning.PodConnections(set.PoolMaxConns))
	return wanted, true
}

// setAutoscaled lands the Autoscaled condition (or its absence) in status
// and emits an Event when its reason changes.
func (r *TunedServiceReconciler) setAutoscaled(s *scope) {
	st := &s.ts.Status
	if s.autoscaled == nil {
		if s.hpa == nil { // with an HPA, a pass that rendered nothing keeps what it said
			meta.RemoveStatusCondition(&st.Conditions, pacerv1.ConditionAutoscaled)
		}
		return
	}
	c := *s.autoscaled
	c.Type, c.ObservedGeneration = pacerv1.ConditionAutoscaled, s.ts.Generation
	was := meta.FindStatusCondition(s.before.Status.Conditions, pacerv1.ConditionAutoscaled)
	if was == nil || was.Reason != c.Reason {
		kind := corev1.EventTypeNormal
		if c.Reason != "ReplicasHandedToHPA" && c.Reason != "WaitingForHPA" {
			kind = corev1.EventTypeWarning
		}
		if c.Reason != "HPAOnDeployment" { // that one is announced as a problem
			r.Recorder.Eventf(s.ts, nil, kind, c.Reason, "Autoscale", "%s", c.Message)
		}
	}
	meta.SetStatusCondition(&st.Conditions, c)
}

// forAutoscaler queues the TunedService an HPA targets, directly or through its Deployment.
func forAutoscaler(_ context.Context, o client.Object) []ctrl.Request {
	h := o.(*autoscalingv2.HorizontalPodAutoscaler)
	ref := h.Spec.ScaleTargetRef
	if ref.Kind != "TunedService" && ref.Kind != "Deployment" || strings.TrimSpace(ref.Name) == "" {
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: h.Namespace, Name: ref.Name}}}
}
