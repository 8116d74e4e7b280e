package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/metrics"
	"github.com/pacer-dev/pacer/controllers/observe"
)

// Keys of a Prometheus credentials Secret (spec.tuning.metrics.authSecretRef).
const (
	AuthKeyToken    = "token"
	AuthKeyUsername = "username"
	AuthKeyPassword = "password"
	AuthKeyCA       = "ca.crt"
)

// metricsSource picks the source the spec asks for, with the credentials
// its Secret holds. A Prometheus URL the operator may not fetch is refused
// before any Secret is read.
func (r *TunedServiceReconciler) metricsSource(ctx context.Context, ts *pacerv1.TunedService) (metrics.Source, error) {
	spec := ts.Spec.Tuning.Metrics
	key := client.ObjectKeyFromObject(ts)
	if spec.Source != pacerv1.MetricsFromPrometheus || spec.AuthSecretRef == nil {
		return r.Metrics.For(key, spec, nil)
	}
	if err := r.Metrics.Allowed(spec); err != nil {
		return nil, err
	}
	auth, err := r.prometheusAuth(ctx, ts.Namespace, spec.AuthSecretRef.Name)
	if err != nil {
		return nil, err
	}
	return r.Metrics.For(key, spec, auth)
}

// LabelMetricsCredentials must be "true" on a Secret a TunedService names
// in spec.tuning.metrics.authSecretRef. Whoever may edit TunedServices
// but not read Secrets must not be able to send any Secret of the
// namespace (a legacy ServiceAccount token under `token`, say) to a URL
// of their choice: the Secret's owner opts it in.
const LabelMetricsCredentials = "pacer.dev/metrics-credentials"

// prometheusAuth reads the one Secret named, straight from the API server
// (Secrets' values are never cached, and the operator's Secret watch holds
// metadata only), and only if it carries LabelMetricsCredentials: an
// unlabelled Secret's value is never read. A missing Secret and an
// unlabelled one read the same, so the condition tells a tenant nothing
// about Secrets they may not read.
func (r *TunedServiceReconciler) prometheusAuth(ctx context.Context, namespace, name string) (*metrics.PrometheusAuth, error) {
	var list corev1.SecretList
	err := r.APIReader.List(ctx, &list, client.InNamespace(namespace),
		client.MatchingFields{"metadata.name": name}, client.MatchingLabels{LabelMetricsCredentials: "true"})
	switch {
	case err != nil:
		return nil, fmt.Errorf("reading Secret %q named by spec.tuning.metrics.authSecretRef: %s", name, apierrors.ReasonForError(err))
	case len(list.Items) != 1:
		return nil, fmt.Errorf("no Secret %q labelled %s=true, as spec.tuning.metrics.authSecretRef requires, exists",
			name, LabelMetricsCredentials)
	}
	sec := &list.Items[0]
	auth := &metrics.PrometheusAuth{
		BearerToken: string(sec.Data[AuthKeyToken]),
		Username:    string(sec.Data[AuthKeyUsername]),
		Password:    string(sec.Data[AuthKeyPassword]),
		CA:          sec.Data[AuthKeyCA],
	}
	if auth.BearerToken == "" && auth.Username == "" && auth.Password == "" && len(auth.CA) == 0 {
		return nil, fmt.Errorf("the Secret %q named by spec.tuning.metrics.authSecretRef has none of the keys %s, %s/%s, %s",
			name, AuthKeyToken, AuthKeyUsername, AuthKeyPassword, AuthKeyCA)
	}
	return auth, nil
}

// errObservationPanicked is the message of an observation that ended in a
// recovered panic; the panic and its stack are in the operator's log.
const errObservationPanicked = "reading the metrics failed; the operator's log has the details"

// observationPanicked is the failed observation a panic on an observer's
// goroutine becomes (observe.Options.Recover).
func observationPanicked(types.NamespacedName, any) observed {
	return observed{noWindow: observationFailed(errObservationPanicked)}
}

// recoverObservation, deferred by the tuning step, turns a panic while the
// pass handles an observation into that service's failed observation: the
// pass goes on with the settings it had, and the process lives.
func (r *TunedServiceReconciler) recoverObservation(s *scope) {
	v := recover()
	if v == nil {
		return
	}
	observe.Recovered(observe.StageReconcile, client.ObjectKeyFromObject(s.ts), v)
	c := observationFailed(errObservationPanicked)
	s.tuned = &metav1.Condition{Status: c.Status, Reason: c.Reason, Message: c.Message}
}
