package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

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

// A CPU request is no ceiling: only a limit is capacity. Main assumed
// the request, or 100m without one, and scaled steady load to the maximum.
func TestPodCPULimit(t *testing.T) {
	for _, tc := range []struct {
		name string
		res  *corev1.ResourceRequirements
		want float64
	}{
		{"nothing set", nil, 0},
		{"request only", &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}, 0},
		{"limit", &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1500m")}}, 1.5},
	} {
		ts := &pacerv1.TunedService{}
		ts.Spec.Resources = tc.res
		if got := podCPULimit(ts); got != tc.want {
			t.Errorf("%s: podCPULimit = %v, want %v", tc.name, got, tc.want)
		}
	}
}
