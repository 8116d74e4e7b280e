// Package generated makes the observability files that are built from code
// or kept in two places, so the command that writes them and the test that
// checks them up to date make the same bytes.
package generated

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pacer-dev/pacer/hack/observability/dashboard"
)

// Paths of the files, from the repository root.
const (
	RulesSource      = "config/prometheus/rules.yaml"
	Dashboard        = "config/grafana/pacer-dashboard.json"
	ChartDashboard   = "dist/chart/files/pacer-dashboard.json"
	ChartRuleGroups  = "dist/chart/files/rules.yaml"
	generatedWarning = "# Generated from config/prometheus/rules.yaml by hack/observability/cmd/generate: edit that file.\n"
)

// Files returns every generated file by its path from root.
func Files(root string) (map[string][]byte, error) {
	d, err := dashboard.Build()
	if err != nil {
		return nil, fmt.Errorf("build the dashboard: %w", err)
	}
	js, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the dashboard: %w", err)
	}
	js = append(js, '\n')
	rules, err := os.ReadFile(filepath.Join(root, RulesSource))
	if err != nil {
		return nil, err
	}
	groups, err := RuleGroups(rules)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RulesSource, err)
	}
	files := map[string][]byte{
		Dashboard:       js,
		ChartDashboard:  js,
		ChartRuleGroups: append([]byte(generatedWarning), groups...),
	}
	// The chart's CRDs and the manager's rules are controller-gen's output,
	// copied as they are: the templates read them with fromYaml.
	crds, err := filepath.Glob(filepath.Join(root, "config/crd/bases/*.yaml"))
	if err != nil {
		return nil, err
	}
	for _, src := range append(crds, filepath.Join(root, "config/rbac/role.yaml")) {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		dst := "dist/chart/files/crds/" + filepath.Base(src)
		if filepath.Base(src) == "role.yaml" {
			dst = "dist/chart/files/rbac/role.yaml"
		}
		files[dst] = data
	}
	return files, nil
}

// RuleGroups cuts the rule groups out of a PrometheusRule, as text (so the
// block scalars and their layout stay as written): what follows `spec:`,
// less its indent. It is a rule file as promtool reads it, and what the
// chart puts under its own PrometheusRule's spec.
func RuleGroups(prometheusRule []byte) ([]byte, error) {
	_, after, ok := bytes.Cut(prometheusRule, []byte("\nspec:\n"))
	if !ok {
		return nil, fmt.Errorf("no top-level spec")
	}
	var out strings.Builder
	for _, line := range strings.SplitAfter(string(after), "\n") {
		if line == "" {
			continue
		}
		if strings.TrimSpace(line) != "" && !strings.HasPrefix(line, "  ") {
			return nil, fmt.Errorf("spec is not the last top-level field: %q", line)
		}
		out.WriteString(strings.TrimPrefix(line, "  "))
	}
	return []byte(out.String()), nil
}
