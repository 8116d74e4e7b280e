// Command generate writes the observability files built from code or kept
// in two places: the Grafana dashboard (config/grafana and the chart) and
// the chart's copy of the alert rules (from config/prometheus/rules.yaml).
// Run it from the repository root: go run ./hack/observability/cmd/generate
// (or `make observability`); the tests fail while its output is stale.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pacer-dev/pacer/hack/observability/generated"
)

func main() {
	root := "."
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	files, err := generated.Files(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for path, data := range files {
		full := filepath.Join(root, path)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(full, data, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
