package observability

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

const chart = root + "/dist/chart"

// helm runs the pinned helm (hack/helm.sh builds it) and returns stdout.
func helm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	bin := tool(t, "PACER_TEST_HELM", "helm", "hack/helm.sh")
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("helm %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}

// valuesFiles are the chart's documented values files, and none (the defaults).
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(chart + "/examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no values files in %s/examples: %v", chart, err)
	}
	return append([]string{""}, files...)
}

// helm lint and helm template pass with the defaults and each documented
// values file.
func TestChartLintsAndRendersWithEveryValuesFile(t *testing.T) {
	for _, f := range valuesFiles(t) {
		var extra []string
		if f != "" {
			extra = []string{"-f", f}
		}
		if _, err := helm(t, append([]string{"lint", "--strict", chart}, extra...)...); err != nil {
			t.Error(err)
		}
		if _, err := helm(t, append([]string{"template", "pacer", chart, "-n", "pacer-system"}, extra...)...); err != nil {
			t.Error(err)
		}
	}
}

// values.schema.json refuses a misspelt key and a wrong type, with a
// message that names them.
func TestChartValuesSchemaRefusesTypos(t *testing.T) {
	for _, tc := range []struct{ values, want string }{
		{"watchNamespace: [team-a]\n", "watchNamespace"},
		{"crd: {enable: true, keeep: true}\n", "keeep"},
		{"replicas: two\n", "replicas"},
		{"watchNamespaces: [Team_A]\n", "watchNamespaces"},
	} {
		f := filepath.Join(t.TempDir(), "values.yaml")
		if err := os.WriteFile(f, []byte(tc.values), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := helm(t, "template", "pacer", chart, "-f", f)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %q: err = %v, want a refusal naming %s", tc.values, err, tc.want)
		}
	}
}

// The chart and config/ install the same objects: kinds, names, RBAC rules,
// container args, security contexts, probes, resources, monitors and rules
// all compared, so neither can change without the other.
func TestChartMatchesKustomize(t *testing.T) {
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	// The optional parts config/default leaves commented out, built the way
	// uncommenting them would.
	optional := t.TempDir()
	rel, err := filepath.Rel(optional, abs) // kustomize takes no absolute paths
	if err != nil {
		t.Fatal(err)
	}
	kust := fmt.Sprintf("namespace: pacer-system\nnamePrefix: pacer-\nresources:\n- %s/config/prometheus\n- %s/config/network-policy\n", rel, rel)
	if err := os.WriteFile(filepath.Join(optional, "kustomization.yaml"), []byte(kust), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		values string
		dirs   []string
	}{
		{"default", "", []string{root + "/config/default"}},
		{"namespaced", "watchNamespaces: [team-a, team-b]\n", []string{root + "/config/namespaced"}},
		{"monitoring", `prometheus: {serviceMonitor: {enable: true}, podMonitor: {enable: true}, rules: {enable: true}}
networkPolicy: {enable: true}
`, []string{root + "/config/default", optional}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := map[string]map[string]any{}
			for _, dir := range tc.dirs {
				for k, v := range objects(t, kustomize(t, dir)) {
					want[k] = v
				}
			}
			// Helm installs into a namespace it does not create or label;
			// docs/install.md says to label it for restricted Pod Security.
			delete(want, "Namespace//pacer-system")
			f := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(f, []byte(tc.values), 0o644); err != nil {
				t.Fatal(err)
			}
			rendered, err := helm(t, "template", "pacer", chart, "-n", "pacer-system", "-f", f)
			if err != nil {
				t.Fatal(err)
			}
			got := objects(t, rendered)
			if diff := cmp.Diff(keys(want), keys(got)); diff != "" {
				t.Fatalf("objects (-kustomize +chart):\n%s", diff)
			}
			for k := range want {
				if diff := cmp.Diff(want[k], got[k]); diff != "" {
					t.Errorf("%s (-kustomize +chart):\n%s", k, diff)
				}
			}
		})
	}
}

func kustomize(t *testing.T, dir string) []byte {
	t.Helper()
	o := krusty.MakeDefaultOptions()
	o.LoadRestrictions = types.LoadRestrictionsNone
	m, err := krusty.MakeKustomizer(o).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// objects splits a YAML stream into objects by kind/namespace/name, less
// what tells the two installers apart: who manages them, the chart's
// labels, and the CRD's keep policy.
func objects(t *testing.T, stream []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, doc := range bytes.Split(stream, []byte("\n---")) {
		var o map[string]any
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatalf("%v\n%s", err, doc)
		}
		if len(o) == 0 {
			continue
		}
		meta, _ := o["metadata"].(map[string]any)
		if labels, ok := meta["labels"].(map[string]any); ok {
			for _, l := range []string{"app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "helm.sh/chart", "app.kubernetes.io/name"} {
				delete(labels, l)
			}
			if len(labels) == 0 {
				delete(meta, "labels")
			}
		}
		if ann, ok := meta["annotations"].(map[string]any); ok {
			delete(ann, "helm.sh/resource-policy")
			if len(ann) == 0 {
				delete(meta, "annotations")
			}
		}
		key := fmt.Sprintf("%s/%v/%v", o["kind"], meta["namespace"], meta["name"])
		key = strings.ReplaceAll(key, "<nil>", "")
		if _, dup := out[key]; dup {
			t.Fatalf("%s twice", key)
		}
		out[key] = o
	}
	return out
}

func keys(m map[string]map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// The dashboard ConfigMap carries the dashboard JSON unchanged, with the
// label Grafana's sidecar looks for.
func TestChartDashboardConfigMapHoldsTheDashboard(t *testing.T) {
	rendered, err := helm(t, "template", "pacer", chart, "-n", "pacer-system", "--set", "grafana.dashboard.enable=true")
	if err != nil {
		t.Fatal(err)
	}
	cm, ok := objects(t, rendered)["ConfigMap/pacer-system/pacer-dashboard"]
	if !ok {
		t.Fatal("no ConfigMap pacer-dashboard")
	}
	want, err := os.ReadFile(filepath.Join(root, "config/grafana/pacer-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	data, _ := cm["data"].(map[string]any)
	if got, _ := data["pacer-dashboard.json"].(string); got != strings.TrimSuffix(string(want), "\n") {
		t.Errorf("the ConfigMap's dashboard differs from config/grafana/pacer-dashboard.json")
	}
	labels, _ := cm["metadata"].(map[string]any)["labels"].(map[string]any)
	if labels["grafana_dashboard"] != "1" {
		t.Errorf("labels %v, want grafana_dashboard: \"1\"", labels)
	}
}
