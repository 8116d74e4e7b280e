package sim

import "strings"

// Markdown renders the scorecard document (filled in report.go).
func Markdown(sc Scenario, traces []Trace, rows []Row, runs map[string][]Result) string {
	var b strings.Builder
	b.WriteString(Table(rows))
	return b.String()
}
