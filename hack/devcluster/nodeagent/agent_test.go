package nodeagent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestBinaryFor(t *testing.T) {
	a := &Agent{opts: Options{Images: map[string]string{"pacer-api": "/bin/pacer-api", "registry.example/full:v1": "/bin/full"}}}
	for image, want := range map[string]string{
		"ghcr.io/pacer-dev/pacer-api:v0.1.0":   "/bin/pacer-api",
		"pacer-api":                            "/bin/pacer-api",
		"ghcr.io/pacer-dev/pacer-api@sha256:0": "/bin/pacer-api",
		"registry.example/full:v1":             "/bin/full",
		"ghcr.io/pacer-dev/other:v1":           "",
	} {
		got, ok := a.binaryFor(image)
		if got != want || ok != (want != "") {
			t.Errorf("binaryFor(%q) = %q, %t; want %q", image, got, ok, want)
		}
	}
}

func TestMapPath(t *testing.T) {
	p := &podRuntime{dir: "/pods/p1"}
	c := &corev1.Container{VolumeMounts: []corev1.VolumeMount{{Name: "config", MountPath: "/etc/pacer"}}}
	for in, want := range map[string]string{
		"--config=/etc/pacer/config.yaml": "--config=/pods/p1/volumes/config/config.yaml",
		"/etc/pacer":                      "/pods/p1/volumes/config",
		"--dir=/etc/pacer":                "--dir=/pods/p1/volumes/config",
		"/etc/pacerx/file":                "/etc/pacerx/file",
		"--verbose":                       "--verbose",
	} {
		if got := p.mapPath(c, in); got != want {
			t.Errorf("mapPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResourceValue(t *testing.T) {
	a := &Agent{opts: Options{CPU: resource.MustParse("2"), Memory: resource.MustParse("4Gi")}}
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
		Name: "c",
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		},
	}}}}
	for _, tc := range []struct {
		ref  corev1.ResourceFieldSelector
		want string
	}{
		{corev1.ResourceFieldSelector{Resource: "limits.memory"}, "268435456"},
		{corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}, "256"},
		{corev1.ResourceFieldSelector{Resource: "requests.cpu", Divisor: resource.MustParse("1m")}, "250"},
		{corev1.ResourceFieldSelector{Resource: "requests.cpu"}, "1"},    // rounded up
		{corev1.ResourceFieldSelector{Resource: "limits.cpu"}, "2"},      // no limit: the node's
		{corev1.ResourceFieldSelector{Resource: "requests.memory"}, "0"}, // none
	} {
		got, err := a.resourceValue(pod, &tc.ref, "c")
		if err != nil || got != tc.want {
			t.Errorf("%s/%s = %q, %v; want %q", tc.ref.Resource, tc.ref.Divisor.String(), got, err, tc.want)
		}
	}
}
