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

// prometheusAuth reads the one Secret named, straight from the API server:
// Secrets' values are never cached, and the operator's Secret watch holds
// metadata only.
func (r *TunedServiceReconciler) prometheusAuth(ctx context.Context, namespace, name string) (*metrics.PrometheusAuth, error) {
	sec := &corev1.Secret{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, sec)
	switch {
	case apierrors.IsNotFound(err):
		return nil, fmt.Errorf("the Secret %q named by spec.tuning.metrics.authSecretRef does not exist", name)
	case err != nil:
		return nil, fmt.Errorf("reading Secret %q named by spec.tuning.metrics.authSecretRef: %s", name, apierrors.ReasonForError(err))
	}
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
