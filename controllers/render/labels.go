// Package render builds the desired state of a TunedService's children:
// the pacer-api config, its ConfigMap, the Deployment, Service and
// PodDisruptionBudget. Everything here is a pure function of its inputs, so
// it is tested with tables and no API server.
package render

import (
	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Label keys and values on every object Pacer owns.
const (
	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	AppName   = "pacer-api"
	ManagedBy = "pacer"
)

// Annotations Pacer writes.
const (
	// AnnotationConfigHash identifies the content of a rendered config.
	AnnotationConfigHash = "pacer.dev/config-hash"
	// AnnotationConfigGeneration is the generation of a rendered config.
	AnnotationConfigGeneration = "pacer.dev/config-generation"
	// AnnotationRestartHash on the pod template changes, and so rolls the
	// pods, when something a running pod cannot pick up changes: the content
	// of a referenced Secret, which reaches the pod only as an environment variable.
	AnnotationRestartHash = "pacer.dev/restart-hash"
)

// Where the config lives in the ConfigMap and in the pod.
const (
	ConfigKey       = "config.yaml"
	ConfigMountPath = "/etc/pacer"
	ContainerName   = "pacer-api"

	APIPort   = 8080
	AdminPort = 9090
)

// Labels are the labels of every child of ts.
func Labels(ts *pacerv1.TunedService) map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelInstance:  ts.Name,
		LabelManagedBy: ManagedBy,
	}
}

// SelectorLabels select the pods of ts. They never change, because a
// Deployment's selector is immutable.
func SelectorLabels(ts *pacerv1.TunedService) map[string]string {
	return map[string]string{
		LabelName:     AppName,
		LabelInstance: ts.Name,
	}
}

// ConfigMapName is the name of ts's ConfigMap. The Deployment, Service and
// PodDisruptionBudget share ts's own name.
func ConfigMapName(ts *pacerv1.TunedService) string { return ts.Name + "-config" }
