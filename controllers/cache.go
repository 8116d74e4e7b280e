package controllers

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pacer-dev/pacer/controllers/render"
)

// CacheOptions are the manager's cache options. namespaces, when given,
// limit everything the operator watches (TunedServices, children, pods,
// Secrets) to those namespaces; none means the whole cluster.
func CacheOptions(namespaces []string, syncPeriod *time.Duration) cache.Options {
	o := cache.Options{
		ByObject:   CacheByObject(),
		SyncPeriod: syncPeriod,
		// Nothing Pacer does reads managedFields: do not keep them in memory.
		DefaultTransform: cache.TransformStripManagedFields(),
	}
	if len(namespaces) > 0 {
		o.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, ns := range namespaces {
			o.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return o
}

// CacheByObject restricts the manager's cache of child kinds to the objects
// Pacer manages, so the operator's memory does not grow with the cluster,
// and keeps of each Secret only what tells that it exists and changed.
func CacheByObject() map[client.Object]cache.ByObject {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})}
	return map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}:             managed,
		&appsv1.Deployment{}:            managed,
		&corev1.Service{}:               managed,
		&policyv1.PodDisruptionBudget{}: managed,
		&corev1.Pod{}:                   managed,
		secretMetadata():                {Transform: stripSecretMetadata},
	}
}

// secretMetadata is the type Secrets are watched as: metadata only.
func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}

// stripSecretMetadata keeps of a Secret's metadata its identity and
// version. Annotations go: `kubectl apply` (client-side) stores the whole
// Secret, data included, in kubectl.kubernetes.io/last-applied-configuration,
// and managedFields can name its keys.
func stripSecretMetadata(obj any) (any, error) {
	m, ok := obj.(*metav1.PartialObjectMetadata)
	if !ok {
		return obj, nil // a tombstone: passed on as it is
	}
	m.Annotations = nil
	m.ManagedFields = nil
	return m, nil
}
