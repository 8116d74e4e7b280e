// Package v1alpha1 contains the TunedService and ConnectionBudget API of the tuning.pacer.dev group.
// +kubebuilder:object:generate=true
// +groupName=tuning.pacer.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of the objects in this package.
	GroupVersion = schema.GroupVersion{Group: "tuning.pacer.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the types of this package to a scheme. The API
	// package depends on apimachinery only, so clients import it cheaply.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &TunedService{}, &TunedServiceList{}, &ConnectionBudget{}, &ConnectionBudgetList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
