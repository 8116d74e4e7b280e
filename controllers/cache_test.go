package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A Secret created by client-side `kubectl apply` carries its own data in
// an annotation. The operator's cache keeps no annotation of any Secret.
func TestCachedSecretMetadataHoldsNoAnnotations(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	const lastApplied = `{"apiVersion":"v1","kind":"Secret","metadata":{"name":"applied"},"stringData":{"url":"postgres://u:s3cret-value@db/x"}}`
	sec := newSecret(ns, "applied")
	sec.Annotations = map[string]string{corev1.LastAppliedConfigAnnotation: lastApplied, "team": "a"}
	create(t, s.client, sec)

	cached := secretMetadata()
	g.Eventually(func() error {
		return s.cached.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "applied"}, cached)
	}, eventually, poll).Should(Succeed())
	g.Expect(cached.ResourceVersion).NotTo(BeEmpty(), "the version the restart hash needs is kept")
	g.Expect(cached.Annotations).To(BeEmpty())
	g.Expect(cached.ManagedFields).To(BeEmpty())
	g.Expect(toJSON(t, cached)).NotTo(ContainSubstring("s3cret"))
}

func TestCacheOptionsWatchOnlyTheNamespacesGiven(t *testing.T) {
	g := NewWithT(t)
	g.Expect(CacheOptions(nil, nil).DefaultNamespaces).To(BeEmpty(), "no list: the whole cluster")
	o := CacheOptions([]string{"team-a", "team-b"}, nil)
	g.Expect(o.DefaultNamespaces).To(HaveLen(2))
	g.Expect(o.DefaultNamespaces).To(HaveKey("team-a"))
	g.Expect(o.DefaultNamespaces).To(HaveKey("team-b"))
	g.Expect(o.ByObject).To(HaveKey(BeAssignableToTypeOf(&metav1.PartialObjectMetadata{})))
}
