package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=connectionbudgets,verbs=get;list;watch

// resolveBudget reads a member's allocation from its ConnectionBudget's
// status, which the budget controller alone writes. It reports false, with
// the problem, when the service may not render pods now: the budget is
// missing, has refused it, or has not yet granted it room. Pods already
// running keep the settings they have: those were within the last
// allocation, which the budget keeps counting.
func (r *TunedServiceReconciler) resolveBudget(ctx context.Context, s *scope) bool {
	ref := s.ts.Spec.Database.BudgetRef
	if ref == nil {
		return true
	}
	b := &pacerv1.ConnectionBudget{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.ts.Namespace, Name: ref.Name}, b)
	switch {
	case apierrors.IsNotFound(err):
		s.problems = append(s.problems, problem{reason: "BudgetNotFound", message: fmt.Sprintf(
			"ConnectionBudget %q named by spec.database.budgetRef does not exist in namespace %s; nothing is rendered until it does",
			ref.Name, s.ts.Namespace)})
		return false
	case err != nil:
		s.problems = append(s.problems, problem{reason: "BudgetUnreadable", message: fmt.Sprintf("reading ConnectionBudget %q: %v", ref.Name, err)})
		return false
	}
	var m *pacerv1.BudgetMember
	for i := range b.Status.Members {
		if b.Status.Members[i].Name == s.ts.Name {
			m = &b.Status.Members[i]
		}
	}
	switch {
	case m == nil:
		s.problems = append(s.problems, problem{reason: "BudgetPending", regarding: b, message: fmt.Sprintf(
			"waiting for ConnectionBudget %q to admit this service", ref.Name)})
		return false
	case m.State == pacerv1.MemberRefused:
		s.problems = append(s.problems, problem{reason: "BudgetRefused", regarding: b, message: fmt.Sprintf(
			"ConnectionBudget %q refused this service: %s", ref.Name, m.Message)})
		return false
	case m.State != pacerv1.MemberAdmitted || m.Allocated <= 0:
		s.problems = append(s.problems, problem{reason: "BudgetPending", regarding: b, message: fmt.Sprintf(
			"ConnectionBudget %q admitted this service but has granted it no room yet: %s", ref.Name, m.Message)})
		return false
	}
	s.allocation = m.Allocated
	return true
}

// connectionLimit is the budget the tuner plans within: the spec's
// maxTotalConnections, the budget's allocation, or the smaller of both
// when both apply; 0 when neither does.
func connectionLimit(ts *pacerv1.TunedService, allocation int32) int32 {
	limit := ptr.Deref(ts.Spec.Database.MaxTotalConnections, 0)
	if allocation > 0 && (limit == 0 || allocation < limit) {
		limit = allocation
	}
	return limit
}

// fitAllocation keeps what a budget member's pods may hold within its
// allocation, each pod counted with its health connection: the pool
// shrinks first (not below its smallest), then the replicas. The tuner
// plans within the allocation already; this is the last word before
// rendering, so a count that leaves the health pool out (replicas × pool)
// cannot take a member over its share. An HPA's replicas are fitted by
// fitAutoscaled instead.
func (r *TunedServiceReconciler) fitAllocation(_ context.Context, s *scope) error {
	if s.allocation <= 0 || s.hpa != nil {
		return nil
	}
	limit := connectionLimit(s.ts, s.allocation)
	asked := s.settings
	if _, capped := capToBudget(&s.settings, limit, smallestPool(s)); !capped && s.settings == asked {
		return nil
	}
	if e := s.before.Status.Effective; e == nil || e.Settings != s.settings { // said once, when it changes
		r.Recorder.Eventf(s.ts, nil, corev1.EventTypeNormal, "BudgetFit", "Render",
			"replicas %d × (pool %d + 1) → %d × (%d + 1): the pods' connections must fit the allocation %d",
			asked.Replicas, asked.PoolMaxConns, s.settings.Replicas, s.settings.PoolMaxConns, limit)
	}
	return nil
}

// smallestPool is the smallest pool the service may run with.
func smallestPool(s *scope) int32 {
	p := s.settings.PoolMaxConns
	if b := s.ts.Spec.Tuning.Bounds.PoolMaxConns; b != nil {
		p = min(p, b.Min)
	}
	return p
}
