package metricsserver

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pacer-dev/pacer/hack/devcluster/internal/kubetest"
	"github.com/pacer-dev/pacer/hack/devcluster/pki"
)

// A metrics-server that cannot start leaves no APIService behind: an
// unavailable one would fail discovery for the whole cluster.
func TestAFailedStartUnregisters(t *testing.T) {
	cfg := kubetest.Start(t).Config
	ca, err := pki.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// /bin/false stands for a metrics-server that exits at once.
	_, err = Start(ctx, cfg, Options{Binary: "/bin/false", Dir: dir, Kubeconfig: filepath.Join(dir, "none"), CA: ca, KubeletCAFile: filepath.Join(dir, "none")})
	if err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("Start = %v, want an error saying metrics-server exited", err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api := &unstructured.Unstructured{}
	api.SetAPIVersion("apiregistration.k8s.io/v1")
	api.SetKind("APIService")
	if err := c.Get(ctx, client.ObjectKey{Name: APIServiceName}, api); !apierrors.IsNotFound(err) {
		t.Errorf("APIService %s after a failed start: %v, want NotFound", APIServiceName, err)
	}

	if _, err := Start(ctx, cfg, Options{Binary: filepath.Join(dir, "missing"), Dir: dir, CA: ca}); err == nil || !strings.Contains(err.Error(), "envtest-assets.sh metrics-server") {
		t.Errorf("a missing binary: %v, want an error saying how to build it", err)
	}
}
