package observability

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// The chart installed on a real API server runs the real manager: with the
// container args the chart renders and, as its identity, the chart's
// ServiceAccount (bound by the chart's RBAC and nothing else), it reconciles
// a TunedService in a listed namespace and leaves one elsewhere alone.
func TestChartInstallRunsTheManagerInListedNamespacesOnly(t *testing.T) {
	c, kubeconfig, env := apiServerEnv(t)
	ctx := context.Background()
	for _, ns := range []string{"pacer-system", "team-a", "team-b", "team-c"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	values := chart + "/examples/namespaced.yaml"
	if _, err := helm(t, "install", "pacer", chart, "-n", "pacer-system", "--kubeconfig", kubeconfig, "-f", values); err != nil {
		t.Fatal(err)
	}
	rendered, err := helm(t, "template", "pacer", chart, "-n", "pacer-system", "-f", values)
	if err != nil {
		t.Fatal(err)
	}
	args := managerArgs(t, rendered)

	// The ServiceAccount's identity, as the pod would have it.
	user, err := env.AddUser(envtest.User{
		Name:   "system:serviceaccount:pacer-system:pacer-controller-manager",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:pacer-system", "system:authenticated"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	saConfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	saKubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(saKubeconfig, saConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	startManager(t, dir, saKubeconfig, args)

	for _, ns := range []string{"team-a", "team-c"} {
		if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			StringData: map[string]string{"url": "postgres://u:p@db:5432/db"}}); err != nil {
			t.Fatal(err)
		}
		createTunedService(t, c, ns, "users")
	}
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		return c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "users"}, &appsv1.Deployment{}) == nil, nil
	})
	if err != nil {
		t.Fatalf("the manager rendered no Deployment for the TunedService in team-a (log: %s)", filepath.Join(dir, "manager.log"))
	}
	ts := &unstructured.Unstructured{}
	ts.SetGroupVersionKind(tunedServiceGVK)
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if c.Get(ctx, client.ObjectKey{Namespace: "team-a", Name: "users"}, ts) != nil {
			return false, nil //nolint:nilerr // not there yet: poll again
		}
		conds, _, _ := unstructured.NestedSlice(ts.Object, "status", "conditions")
		return len(conds) == 4, nil
	})
	if err != nil {
		t.Errorf("team-a's TunedService has no status conditions: %v", ts.Object["status"])
	}
	// team-c is not listed: the manager neither watches nor may touch it.
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-c", Name: "users"}, ts); err != nil {
		t.Fatal(err)
	}
	if st, ok := ts.Object["status"]; ok {
		t.Errorf("the TunedService in team-c, which is not listed, got a status: %v", st)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "team-c", Name: "users"}, &appsv1.Deployment{}); err == nil {
		t.Error("the manager rendered a Deployment in team-c, which is not listed")
	}
}

// managerArgs returns the manager container's args from a rendered chart,
// made to run outside a pod: the metrics and probe listeners on no fixed
// port, and no leader election (which needs the pod's namespace file).
func managerArgs(t *testing.T, rendered []byte) []string {
	t.Helper()
	for key, o := range objects(t, rendered) {
		if !strings.HasPrefix(key, "Deployment/") {
			continue
		}
		var d appsv1.Deployment
		b, err := yaml.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		var args []string
		for _, a := range d.Spec.Template.Spec.Containers[0].Args {
			switch {
			case a == "--leader-elect":
			case strings.HasPrefix(a, "--metrics-bind-address="):
				args = append(args, "--metrics-bind-address=0")
			case strings.HasPrefix(a, "--health-probe-bind-address="):
				args = append(args, "--health-probe-bind-address=0")
			default:
				args = append(args, a)
			}
		}
		return args
	}
	t.Fatal("no Deployment in the rendered chart")
	return nil
}

// startManager builds the manager from this repository and runs it with
// args against kubeconfig until the test ends.
func startManager(t *testing.T, dir, kubeconfig string, args []string) {
	t.Helper()
	bin := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the manager: %v\n%s", err, out)
	}
	log, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // killed or interrupted: its exit status says nothing
		close(exited)
	}()
	t.Cleanup(func() {
		// A manager still waiting for its caches (no permission to list)
		// may not stop on SIGINT: kill it after a grace period.
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			if b, err := os.ReadFile(log.Name()); err == nil {
				t.Logf("manager log:\n%s", b)
			}
		}
	})
}
