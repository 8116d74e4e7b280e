package scenario

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// The demo's dashboard.svg draws the Grafana dashboard's panels by their
// titles, from the run's rows: a panel renamed or dropped there fails
// here, and so does a panel whose values do not follow the rows.
func TestDashboardPanelsFollowTheDashboardAndTheRows(t *testing.T) {
	b, err := os.ReadFile("../../../config/grafana/pacer-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title string `json:"title"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	titles := map[string]bool{}
	for _, p := range d.Panels {
		titles[p.Title] = true
	}
	rows := []WindowRow{
		{Seconds: 5, Requests: 500, OfferedRPS: 100, ServedRPS: 90, P99Ms: 40, R503: 50, Replicas: 2, Workers: 16, Pool: 4, PGConns: 9, PoolTotal: 8, CacheHit: 70},
		{Seconds: 10, Requests: 1000, OfferedRPS: 200, ServedRPS: 200, P99Ms: 20, Replicas: 3, Workers: 16, Pool: 4, PGConns: 13, PoolTotal: 12, CacheHit: -1},
	}
	panels := DashboardPanels(rows, 50*time.Millisecond, 12)
	value := func(panel, line string, i int) float64 {
		t.Helper()
		for _, p := range panels {
			if !strings.HasPrefix(p.Title, panel) {
				continue
			}
			for _, l := range p.Lines {
				if l.Name == line {
					return l.Points[i].V
				}
			}
		}
		t.Fatalf("no line %q in panel %q", line, panel)
		return 0
	}
	for _, p := range panels {
		title, _, _ := strings.Cut(p.Title, " (")
		if !titles[title] {
			t.Errorf("panel %q is not on the Grafana dashboard", title)
		}
	}
	if got := value("Errors and refusals", "shed (503)", 0); got != 10 {
		t.Errorf("503s per second = %g, want 50 in a 5 s window = 10", got)
	}
	if got := value("Database connections against the budget", "open (pg_stat_activity)", 1); got != 13 {
		t.Errorf("open connections = %g, want 13", got)
	}
	if got := value("Cache hit ratio", "hit ratio", 1); got != 0 {
		t.Errorf("an unknown hit ratio is drawn as %g, want 0", got)
	}
	if p := panels[4]; p.Ref != 12 {
		t.Errorf("the connections panel's budget line is at %g, want 12", p.Ref)
	}
	if svg := DashboardChart(rows, nil, time.Time{}, 50*time.Millisecond, 12); !strings.Contains(svg, "Database connections against the budget") {
		t.Error("dashboard.svg lacks the connections panel")
	}
}
