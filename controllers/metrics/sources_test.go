package metrics

import (
	"testing"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

func TestSourcesFor(t *testing.T) {
	t.Parallel()
	s := NewSources(SourcesOptions{})
	for _, spec := range []pacerv1.MetricsSpec{{}, {Source: pacerv1.MetricsFromPods}} {
		if got, err := s.For(spec); err != nil || got != Source(s.Pods()) {
			t.Errorf("For(%+v) = %v, %v; want the shared Pods source", spec, got, err)
		}
	}
	a, err := s.For(pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus, PrometheusURL: "http://prometheus.monitoring:9090"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*Prometheus); !ok {
		t.Fatalf("For(Prometheus) = %T, want *Prometheus", a)
	}
	again, _ := s.For(pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus, PrometheusURL: "http://prometheus.monitoring:9090"})
	other, _ := s.For(pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus, PrometheusURL: "http://other:9090"})
	if again != a || other == a {
		t.Error("want one Prometheus source per URL, reused")
	}
	if _, err := s.For(pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus}); err == nil {
		t.Error("Prometheus without a URL: no error")
	}
	if _, err := s.For(pacerv1.MetricsSpec{Source: "Graphite"}); err == nil {
		t.Error("an unknown source: no error")
	}
}
