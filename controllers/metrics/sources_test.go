package metrics

import (
	"testing"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

func TestSourcesFor(t *testing.T) {
	t.Parallel()
	s := NewSources(SourcesOptions{})
	for _, spec := range []pacerv1.MetricsSpec{{}, {Source: pacerv1.MetricsFromPods}} {
		if got, err := s.For(spec, nil); err != nil || got != Source(s.Pods()) {
			t.Errorf("For(%+v) = %v, %v; want the shared Pods source", spec, got, err)
		}
	}
	prom := func(url string) pacerv1.MetricsSpec {
		return pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus, PrometheusURL: url}
	}
	a, err := s.For(prom("http://prometheus.monitoring.svc:9090"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*Prometheus); !ok {
		t.Fatalf("For(Prometheus) = %T, want *Prometheus", a)
	}
	again, _ := s.For(prom("http://prometheus.monitoring.svc:9090"), nil)
	other, _ := s.For(prom("http://other.monitoring.svc:9090"), nil)
	withAuth, _ := s.For(prom("http://prometheus.monitoring.svc:9090"), &PrometheusAuth{BearerToken: "t"})
	if again != a || other == a || withAuth == a {
		t.Error("want one Prometheus source per URL and credentials, reused")
	}
	if _, err := s.For(prom(""), nil); err == nil {
		t.Error("Prometheus without a URL: no error")
	}
	if _, err := s.For(pacerv1.MetricsSpec{Source: "Graphite"}, nil); err == nil {
		t.Error("an unknown source: no error")
	}
}
