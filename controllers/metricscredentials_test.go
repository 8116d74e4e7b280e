package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// A TunedService may name, as its Prometheus credentials, only a Secret
// its owner labelled for it: an unlabelled Secret of the namespace (a
// legacy ServiceAccount token, say) is never read nor sent, and the
// condition reads as if it did not exist. Once labelled, it is used.
func TestAuthSecretNeedsTheOptInLabel(t *testing.T) {
	s, g, ts := startCase(t, "creds", func(ts *pacerv1.TunedService) {
		ts.Spec.Tuning.Mode = pacerv1.TuningRecommend
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
		ts.Spec.Tuning.Metrics = pacerv1.MetricsSpec{
			Source:        pacerv1.MetricsFromPrometheus,
			PrometheusURL: "https://prometheus.monitoring.svc:9090",
			AuthSecretRef: &pacerv1.SecretRef{Name: "sa-token"},
		}
	})
	token := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ts.Namespace, Name: "sa-token"},
		StringData: map[string]string{AuthKeyToken: "a-service-account-token"},
	}
	create(t, s.client, token)
	unlabelled := func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionTuned)
		g.Expect(c.Reason).To(Equal("MetricsUnavailable"))
		g.Expect(c.Message).To(ContainSubstring(`no Secret "sa-token" labelled ` + LabelMetricsCredentials + "=true"))
	}
	g.Eventually(unlabelled, eventually, poll).Should(Succeed())

	// A missing Secret reads the same: no oracle for Secrets' existence.
	missing := ts.DeepCopy()
	g.Eventually(func() error {
		if err := get(s.client, missing)(); err != nil {
			return err
		}
		missing.Spec.Tuning.Metrics.AuthSecretRef.Name = "no-such-secret"
		return s.client.Update(context.Background(), missing)
	}, eventually, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, missing, pacerv1.ConditionTuned)
		g.Expect(c.Message).To(Equal(strings.ReplaceAll(`no Secret "sa-token" labelled `+LabelMetricsCredentials+
			`=true, as spec.tuning.metrics.authSecretRef requires, exists`, "sa-token", "no-such-secret")))
	}, eventually, poll).Should(Succeed())
	g.Eventually(func() error {
		if err := get(s.client, missing)(); err != nil {
			return err
		}
		missing.Spec.Tuning.Metrics.AuthSecretRef.Name = "sa-token"
		return s.client.Update(context.Background(), missing)
	}, eventually, poll).Should(Succeed())

	// Labelled: the Secret is read and the source made (envtest runs no
	// pods, so the window says so).
	token.Labels = map[string]string{LabelMetricsCredentials: "true"}
	g.Expect(s.client.Update(context.Background(), token)).To(Succeed())
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionTuned)
		g.Expect(c.Reason).NotTo(Equal("MetricsUnavailable"), c.Message)
	}, eventually, poll).Should(Succeed())
}

// Credentials never go to a plain http URL: refused before the Secret is
// read.
func TestAuthSecretNeverOverPlainHTTP(t *testing.T) {
	s, g, ts := startCase(t, "plain", func(ts *pacerv1.TunedService) {
		ts.Spec.Tuning.Mode = pacerv1.TuningRecommend
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
		ts.Spec.Tuning.Metrics = pacerv1.MetricsSpec{
			Source:        pacerv1.MetricsFromPrometheus,
			PrometheusURL: "http://prometheus.monitoring.svc:9090",
			AuthSecretRef: &pacerv1.SecretRef{Name: "prom-auth"},
		}
	})
	create(t, s.client, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ts.Namespace, Name: "prom-auth", Labels: map[string]string{LabelMetricsCredentials: "true"}},
		StringData: map[string]string{AuthKeyToken: "t"},
	})
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionTuned)
		g.Expect(c.Reason).To(Equal("MetricsUnavailable"))
		g.Expect(c.Message).To(ContainSubstring("never sent to a plain http prometheusURL"))
	}, eventually, poll).Should(Succeed())
}
