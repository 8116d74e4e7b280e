package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/pacer-dev/pacer/hack/observability/generated"
)

type ruleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

func ruleGroups(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, generated.RulesSource))
	if err != nil {
		t.Fatal(err)
	}
	groups, err := generated.RuleGroups(raw)
	if err != nil {
		t.Fatal(err)
	}
	return groups
}

// tool finds a binary by the environment variable that names it, else on
// PATH. Without it the test is skipped, and fails in CI.
func tool(t *testing.T, env, name, install string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found (set %s or put it on PATH; %s installs it)", name, env, install)
	}
	t.Skipf("%s not found (set %s or put it on PATH; %s installs it)", name, env, install)
	return ""
}

// promtool checks the rules and runs their unit tests
// (config/prometheus/rules_test.yaml): each alert firing and not firing.
func TestAlertRulesWithPromtool(t *testing.T) {
	promtool := tool(t, "PACER_TEST_PROMTOOL", "promtool", "hack/prometheus.sh")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pacer.rules.yaml"), ruleGroups(t), 0o644); err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join(root, "config/prometheus/rules_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "rules_test.yaml"), tests, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"check", "rules", "pacer.rules.yaml"},
		{"test", "rules", "rules_test.yaml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Each alert is tested firing and not firing, links a runbook section that
// exists, and names only metrics the project exports.
func TestEveryAlertIsTestedDocumentedAndReal(t *testing.T) {
	var rules ruleFile
	if err := yaml.Unmarshal(ruleGroups(t), &rules); err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	raw, err := os.ReadFile(filepath.Join(root, "config/prometheus/rules_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	runbooks, err := os.ReadFile(filepath.Join(root, "docs/runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)$`).FindAllStringSubmatch(string(runbooks), -1) {
		anchors[strings.ToLower(m[1])] = true
	}
	known := exportedNames(t)
	const base = "https://github.com/pacer-dev/pacer/blob/main/docs/runbooks.md#"
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if !fires[r.Alert] || !quiet[r.Alert] {
				t.Errorf("%s: tested firing %v, not firing %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
			}
			url := r.Annotations["runbook_url"]
			if !strings.HasPrefix(url, base) || !anchors[strings.TrimPrefix(url, base)] {
				t.Errorf("%s: runbook_url %q is not a section of docs/runbooks.md", r.Alert, url)
			}
			names, err := metricNames(r.Expr)
			if err != nil {
				t.Errorf("%s: %v", r.Alert, err)
			}
			for _, name := range names {
				if !known[name] && name != "up" { // up: Prometheus's own, per target
					t.Errorf("%s names %s, which the project does not export", r.Alert, name)
				}
			}
		}
	}
	if n < 11 {
		t.Errorf("%d alerts; the issue asks for 11", n)
	}
}
