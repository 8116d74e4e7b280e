//go:build e2e && compare

package e2e

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacer-dev/pacer/hack/demo/scenario"
)

// TestDemoCompareSmoke is a shortened campaign of `make demo-compare`
// (about five minutes): the capacity probe, then two repetitions of the
// four runs on one dev cluster with 20 s of load each, sized in multiples
// of the measured capacity. It checks the mechanics, not who wins: the
// probe measured a capacity and the load was sized by it, every run
// served its load, the dev cluster served the resource metrics API the
// HPAs read, the report holds each repetition's compare.json and chart and
// the campaign's medians and targets, and nothing is left behind. Run it
// with `make test-demo-compare`.
func TestDemoCompareSmoke(t *testing.T) {
	env := needDevCluster(t, "test-demo-compare")
	dsn := env.dsn

	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	dir := t.TempDir()
	clusterLog, err := os.Create(filepath.Join(dir, "devcluster.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer clusterLog.Close()
	prefix := "pacer_e2e_compare_" + strconv.Itoa(os.Getpid())
	smoke := scenario.CompareShape{Name: "smoke", Phases: []scenario.Phase{
		{Name: "steady", Duration: 10 * time.Second, RPS: 0.5, PerCapacity: true},
		{Name: "step", Duration: 10 * time.Second, RPS: 1.5, PerCapacity: true},
	}}
	out, err := scenario.RunCompare(ctx, scenario.CompareOptions{
		Cluster:  env.cluster(clusterLog),
		AdminDSN: dsn, DatabasePrefix: prefix,
		Shapes: []scenario.CompareShape{smoke, smoke},
		Seed:   1, ReportDir: filepath.Join(dir, "report"), Out: testWriter{t},
		TableEvery: 5 * time.Second, Warmup: 5 * time.Second,
	})
	if err != nil {
		b, _ := os.ReadFile(clusterLog.Name())
		t.Fatalf("demo-compare: %v\ndev cluster log (tail):\n%s", err, tailLines(string(b), 60))
	}

	b, err := os.ReadFile(filepath.Join(out, "campaign.json"))
	if err != nil {
		t.Fatal(err)
	}
	var campaign scenario.Campaign
	if err := json.Unmarshal(b, &campaign); err != nil {
		t.Fatal(err)
	}
	if campaign.CapacityRPS < 10 || len(campaign.Shapes) != 1 || campaign.Shapes[0].Repetitions != 2 || len(campaign.Targets) != 5 {
		t.Errorf("campaign: capacity %.0f req/s, shapes %+v, %d targets; want a capacity, one shape twice, 5 targets",
			campaign.CapacityRPS, campaign.Shapes, len(campaign.Targets))
	}
	for _, rep := range []string{"1-smoke", "2-smoke"} {
		b, err := os.ReadFile(filepath.Join(out, rep, "compare.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cmp scenario.Comparison
		if err := json.Unmarshal(b, &cmp); err != nil {
			t.Fatal(err)
		}
		if cmp.CapacityRPS != campaign.CapacityRPS {
			t.Errorf("%s: capacity %.0f, campaign's %.0f", rep, cmp.CapacityRPS, campaign.CapacityRPS)
		}
		// 10 s at 0.5 and 10 s at 1.5 times the capacity: 20 s of it
		// offered; at least one pod through the 20 s (less the first
		// sample's second).
		for _, run := range scenario.CompareRuns {
			r, ok := cmp.Runs[run]
			if !ok {
				t.Errorf("%s: compare.json has no run %q", rep, run)
				continue
			}
			if float64(r.Requests) < 10*cmp.CapacityRPS || r.Windows == 0 || r.PodSeconds < 15 || r.ConnectionBudget != 24 {
				t.Errorf("%s, run %s: %d requests in %d windows, %.0f pod-seconds, budget %d", rep, run, r.Requests, r.Windows, r.PodSeconds, r.ConnectionBudget)
			}
		}
		// The dev cluster served metrics.k8s.io. (The HPA's first CPU
		// reading comes 30-60 s after a pod starts, later than this run's
		// 20 s of load end, so whether it read one is logged, not asserted.)
		if cmp.ResourceMetrics != "ready" {
			t.Errorf("resource metrics: %s", cmp.ResourceMetrics)
		}
		t.Logf("%s: hpa run: metrics API %s; %d rescales", rep, cmp.Runs[scenario.RunHPA].MetricsAPI, cmp.Runs[scenario.RunHPA].Changes)
		svg, err := os.ReadFile(filepath.Join(out, rep, "chart.svg"))
		if err != nil {
			t.Fatal(err)
		}
		for _, run := range scenario.CompareRuns {
			if !strings.Contains(string(svg), ">"+run+"<") {
				t.Errorf("%s: chart.svg has no line for %s", rep, run)
			}
		}
	}
	// Every run's database was dropped.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var left int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname LIKE $1", prefix+"%").Scan(&left); err != nil {
		t.Fatal(err)
	}
	if left != 0 {
		t.Errorf("%d databases %s_* left behind", left, prefix)
	}
}
