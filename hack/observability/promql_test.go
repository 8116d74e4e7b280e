package observability

import (
	"fmt"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// grafanaVariables stand in for the dashboard's variables, which are not
// PromQL until Grafana substitutes them.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m",
	"$__interval", "1m",
	"$namespace", "ns",
	"$name", "name",
)

// metricNames parses expr and returns the metric names it selects.
func metricNames(expr string) ([]string, error) {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaVariables.Replace(expr))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, sel := range parser.ExtractSelectors(e) {
		found := false
		for _, m := range sel {
			if m.Name == model.MetricNameLabel {
				if m.Type != labels.MatchEqual {
					return nil, fmt.Errorf("%s: a metric name must be matched exactly, not with %s", m, m.Type)
				}
				seen[m.Value] = true
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("a selector without a metric name: %v", sel)
		}
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}
