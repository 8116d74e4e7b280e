package render

import (
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// OwnerReference makes ts the controlling owner of a child, so the garbage
// collector deletes the child with ts and the controller is told of its changes.
func OwnerReference(ts *pacerv1.TunedService) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(pacerv1.GroupVersion.String()).
		WithKind("TunedService").
		WithName(ts.Name).
		WithUID(ts.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}
