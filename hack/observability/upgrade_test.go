package observability

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// apiServer starts a real kube-apiserver and etcd (envtest) with nothing
// installed, and returns an admin client and a kubeconfig file for helm.
func apiServer(t *testing.T) (client.Client, string) {
	c, kubeconfig, _ := apiServerEnv(t)
	return c, kubeconfig
}

// apiServerEnv is apiServer, and the environment, to add users to.
func apiServerEnv(t *testing.T) (client.Client, string, *envtest.Environment) {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KUBEBUILDER_ASSETS is not set (hack/envtest-assets.sh prints it)")
		}
		t.Skip("KUBEBUILDER_ASSETS is not set (hack/envtest-assets.sh prints it)")
	}
	env := &envtest.Environment{}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest: %v", err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kubeconfig, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c, path, env
}

var tunedServiceGVK = schema.GroupVersionKind{Group: "tuning.pacer.dev", Version: "v1alpha1", Kind: "TunedService"}

// applyAll applies a YAML stream server-side as kubectl apply --server-side
// does (make deploy), creating the CRDs and namespaces first.
func applyAll(t *testing.T, c client.Client, stream []byte) {
	t.Helper()
	ctx := context.Background()
	var crds, namespaces, rest []*unstructured.Unstructured
	for _, doc := range bytes.Split(stream, []byte("\n---")) {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &u.Object); err != nil {
			t.Fatal(err)
		}
		if len(u.Object) == 0 {
			continue
		}
		switch u.GetKind() {
		case "CustomResourceDefinition":
			crds = append(crds, u)
		case "Namespace":
			namespaces = append(namespaces, u)
		default:
			rest = append(rest, u)
		}
	}
	for _, u := range append(append(crds, namespaces...), rest...) {
		//nolint:staticcheck // client.Apply with unstructured is what kubectl apply --server-side sends.
		if err := c.Patch(ctx, u, client.Apply, client.FieldOwner("kubectl"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
		if u.GetKind() == "CustomResourceDefinition" {
			waitEstablished(t, c, u.GetName())
		}
	}
}

func waitEstablished(t *testing.T, c client.Client, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		if c.Get(ctx, client.ObjectKey{Name: name}, u) != nil {
			return false, nil //nolint:nilerr // not there yet: poll again
		}
		conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
		for _, cond := range conds {
			m := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", name, err)
	}
}

func createTunedService(t *testing.T, c client.Client, ns, name string) *unstructured.Unstructured {
	t.Helper()
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	ts := &unstructured.Unstructured{}
	ts.SetGroupVersionKind(tunedServiceGVK)
	ts.SetNamespace(ns)
	ts.SetName(name)
	ts.Object["spec"] = map[string]any{"database": map[string]any{"urlSecretRef": map[string]any{"name": "db", "key": "url"}}}
	if err := c.Create(ctx, ts); err != nil {
		t.Fatalf("create TunedService: %v", err)
	}
	return ts
}

// The documented path from the previous release's install (make deploy, a
// kustomize build) to the chart: helm upgrade --install --take-ownership
// over the running objects keeps every TunedService, makes the objects the
// release's, and a later helm uninstall keeps the CRD and so the services.
func TestUpgradeFromThePreviousReleaseThroughHelm(t *testing.T) {
	c, kubeconfig := apiServer(t)
	ctx := context.Background()
	previous, err := os.ReadFile("testdata/v0.1.0-install.yaml")
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, c, previous)
	before := createTunedService(t, c, "shop", "users")

	if _, err := helm(t, "upgrade", "--install", "pacer", chart, "-n", "pacer-system",
		"--take-ownership", "--force-conflicts", "--kubeconfig", kubeconfig); err != nil {
		t.Fatal(err)
	}

	after := &unstructured.Unstructured{}
	after.SetGroupVersionKind(tunedServiceGVK)
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "users"}, after); err != nil {
		t.Fatalf("the TunedService did not survive the upgrade: %v", err)
	}
	if after.GetUID() != before.GetUID() {
		t.Errorf("the TunedService was recreated (uid %s, was %s)", after.GetUID(), before.GetUID())
	}
	crd := &unstructured.Unstructured{}
	crd.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
	if err := c.Get(ctx, client.ObjectKey{Name: "tunedservices.tuning.pacer.dev"}, crd); err != nil {
		t.Fatal(err)
	}
	if got := crd.GetAnnotations()["helm.sh/resource-policy"]; got != "keep" {
		t.Errorf("CRD resource-policy = %q, want keep", got)
	}
	dep := &unstructured.Unstructured{}
	dep.SetGroupVersionKind(schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"})
	if err := c.Get(ctx, client.ObjectKey{Namespace: "pacer-system", Name: "pacer-controller-manager"}, dep); err != nil {
		t.Fatal(err)
	}
	if got := dep.GetAnnotations()["meta.helm.sh/release-name"]; got != "pacer" {
		t.Errorf("the manager's Deployment is not the release's: release-name %q", got)
	}

	if _, err := helm(t, "uninstall", "pacer", "-n", "pacer-system", "--kubeconfig", kubeconfig); err != nil {
		t.Fatal(err)
	}
	if err := c.Get(ctx, client.ObjectKey{Name: "tunedservices.tuning.pacer.dev"}, crd); err != nil {
		t.Errorf("helm uninstall deleted the CRD: %v", err)
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "shop", Name: "users"}, after); err != nil {
		t.Errorf("helm uninstall deleted the TunedService: %v", err)
	}
	err = c.Get(ctx, client.ObjectKey{Namespace: "pacer-system", Name: "pacer-controller-manager"}, dep)
	if !apierrors.IsNotFound(err) {
		t.Errorf("the manager's Deployment after helm uninstall: %v, want gone", err)
	}
}

// A namespaced install grants the manager its rules in the listed
// namespaces and nowhere else, as the API server's authorizer decides.
func TestNamespacedInstallGrantsOnlyTheListedNamespaces(t *testing.T) {
	c, kubeconfig := apiServer(t)
	ctx := context.Background()
	for _, ns := range []string{"pacer-system", "team-a", "team-b", "team-c"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := helm(t, "install", "pacer", chart, "-n", "pacer-system", "--kubeconfig", kubeconfig,
		"-f", chart+"/examples/namespaced.yaml"); err != nil {
		t.Fatal(err)
	}
	manager := "system:serviceaccount:pacer-system:pacer-controller-manager"
	for _, tc := range []struct {
		ns, group, resource, verb string
		allowed                   bool
	}{
		{"team-a", "tuning.pacer.dev", "tunedservices", "watch", true},
		{"team-b", "apps", "deployments", "create", true},
		{"team-b", "", "secrets", "get", true},
		{"team-c", "tuning.pacer.dev", "tunedservices", "list", false},
		{"team-c", "", "secrets", "get", false},
		{"", "tuning.pacer.dev", "tunedservices", "list", false}, // cluster-wide
		{"pacer-system", "coordination.k8s.io", "leases", "update", true},
	} {
		sar := &authv1.SubjectAccessReview{Spec: authv1.SubjectAccessReviewSpec{
			User:   manager,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:pacer-system", "system:authenticated"},
			ResourceAttributes: &authv1.ResourceAttributes{
				Namespace: tc.ns, Group: tc.group, Resource: tc.resource, Verb: tc.verb,
			},
		}}
		if err := c.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s %s.%s in %q: allowed %v, want %v (%s)", tc.verb, tc.resource, tc.group, tc.ns,
				sar.Status.Allowed, tc.allowed, sar.Status.Reason)
		}
	}
}
