package observability

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/pacer-dev/pacer/hack/observability/generated"
)

// root is the repository root, from this module's folder.
const root = "../.."

// The files in the repository are what the generator makes: an edit of the
// JSON or of one copy of the rules alone is refused.
func TestGeneratedFilesAreUpToDate(t *testing.T) {
	files, err := generated.Files(root)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		have, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v (run make observability)", p, err)
			continue
		}
		if !bytes.Equal(have, files[p]) {
			t.Errorf("%s is stale: run make observability and commit it", p)
		}
	}
}

// Every query of the dashboard parses as PromQL and names only metrics the
// project exports: a renamed or removed metric fails here, not as an empty
// panel.
func TestDashboardQueriesNameExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(root, generated.Dashboard))
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatal(err)
	}
	exprs := map[string]string{} // expr → where
	collectExprs(d, "dashboard", exprs)
	if len(exprs) < 20 {
		t.Fatalf("found %d queries in the dashboard; the walk is broken", len(exprs))
	}
	known := exportedNames(t)
	for expr, where := range exprs {
		names, err := metricNames(expr)
		if err != nil {
			t.Errorf("%s: %q: %v", where, expr, err)
			continue
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s: %q names %s, which the project does not export", where, expr, n)
			}
		}
	}
}

// collectExprs finds every "expr" (panel targets, annotations) and every
// query variable's label_values(...) metric.
func collectExprs(v any, where string, out map[string]string) {
	switch v := v.(type) {
	case map[string]any:
		if t, ok := v["title"].(string); ok {
			where = t
		}
		if e, ok := v["expr"].(string); ok {
			out[e] = where
		}
		if v["type"] == "query" {
			if q, ok := v["query"].(string); ok {
				out[labelValuesSelector(q)] = "variable " + v["name"].(string)
			}
		}
		for _, c := range v {
			collectExprs(c, where, out)
		}
	case []any:
		for _, c := range v {
			collectExprs(c, where, out)
		}
	}
}

// labelValuesSelector turns Grafana's label_values(SELECTOR, label) into
// SELECTOR, a PromQL expression.
func labelValuesSelector(q string) string {
	const prefix = "label_values("
	if len(q) < len(prefix) || q[:len(prefix)] != prefix {
		return q
	}
	inner := q[len(prefix) : len(q)-1]
	depth := 0
	for i, r := range inner {
		switch r {
		case '{', '(':
			depth++
		case '}', ')':
			depth--
		case ',':
			if depth == 0 {
				return inner[:i]
			}
		}
	}
	return inner
}
