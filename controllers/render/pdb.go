package render

import (
	"k8s.io/apimachinery/pkg/util/intstr"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// WantsPDB reports whether ts gets a PodDisruptionBudget: only with more
// than one pod, since a budget on a single pod would block node drains.
func WantsPDB(replicas int32) bool { return replicas > 1 }

// PodDisruptionBudget lets voluntary disruptions (drains, upgrades) take
// one pod of ts at a time.
func PodDisruptionBudget(ts *pacerv1.TunedService) *policyv1ac.PodDisruptionBudgetApplyConfiguration {
	return policyv1ac.PodDisruptionBudget(ts.Name, ts.Namespace).
		WithLabels(Labels(ts)).
		WithOwnerReferences(OwnerReference(ts)).
		WithSpec(policyv1ac.PodDisruptionBudgetSpec().
			WithMaxUnavailable(intstr.FromInt32(1)).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(ts))))
}
