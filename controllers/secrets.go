package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// secretRef is a Secret reference and the spec field that holds it.
type secretRef struct {
	field string
	ref   pacerv1.SecretKeyRef
}

// resolveSecrets checks that every referenced Secret exists and records its
// resourceVersion. Only metadata is read: a Secret's value never enters the
// operator. It reports false when one is missing.
func (r *TunedServiceReconciler) resolveSecrets(ctx context.Context, s *scope) bool {
	refs := []secretRef{{"spec.database.urlSecretRef", s.ts.Spec.Database.URLSecretRef}}
	if redis := s.ts.Spec.Cache.Redis; redis != nil {
		refs = append(refs, secretRef{"spec.cache.redis.urlSecretRef", redis.URLSecretRef})
	}

	ok := true
	for _, ref := range refs {
		meta := &metav1.PartialObjectMetadata{}
		meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		err := r.Client.Get(ctx, client.ObjectKey{Namespace: s.ts.Namespace, Name: ref.ref.Name}, meta)
		switch {
		case apierrors.IsNotFound(err):
			s.problems = append(s.problems, problem{
				reason: "SecretNotFound",
				message: fmt.Sprintf("Secret %q named by %s does not exist; pods cannot start until it is created",
					ref.ref.Name, ref.field),
			})
			ok = false
		case err != nil:
			s.problems = append(s.problems, problem{
				reason:  "SecretUnreadable",
				message: fmt.Sprintf("reading Secret %q named by %s: %v", ref.ref.Name, ref.field, err),
			})
			ok = false
		default:
			s.secretVersions[ref.ref.Name] = meta.ResourceVersion
		}
	}
	return ok
}
