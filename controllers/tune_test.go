package controllers

import (
	"testing"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

func TestRedactURLHidesThePrometheusPassword(t *testing.T) {
	ts := &pacerv1.TunedService{}
	ts.Spec.Tuning.Metrics.PrometheusURL = "https://bob:hunter2@prom.example:9090"
	got := redactURL(`query "https://bob:hunter2@prom.example:9090/api/v1/query": connection refused`, ts)
	if want := `query "https://bob:xxxxx@prom.example:9090/api/v1/query": connection refused`; got != want {
		t.Errorf("redactURL = %q, want %q", got, want)
	}
}
