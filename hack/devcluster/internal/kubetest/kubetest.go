// Package kubetest starts a real kube-apiserver and etcd (envtest) for the
// dev cluster's tests, from the binaries hack/envtest-assets.sh builds.
package kubetest

import (
	"os"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Start runs an API server until the test ends; its Config is an admin's. Without KUBEBUILDER_ASSETS the test is skipped, except in
// CI, where a missing API server is a failure, not a pass.
func Start(t *testing.T) *envtest.Environment {
	t.Helper()
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KUBEBUILDER_ASSETS is not set (hack/envtest-assets.sh)")
		}
		t.Skip("KUBEBUILDER_ASSETS is not set (make test-devcluster sets it)")
	}
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	if _, err := env.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	return env
}
