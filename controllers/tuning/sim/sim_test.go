package sim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// short cuts every trace to its first 15 scored minutes (every load change
// of the step and spike traces included).
func short() []Trace {
	var out []Trace
	for _, tr := range Traces() {
		tr.Warmup, tr.Duration = 2*time.Minute, 15*time.Minute
		out = append(out, tr)
	}
	return out
}

// TestPacerSafety runs the real tuner through every trace, with the spec's
// budget and bounds, and with a tighter budget, and checks the hard
// properties: the connection budget is never exceeded, no tuned setting
// leaves its bounds, no setting without bounds changes, and every change
// has a reason.
func TestPacerSafety(t *testing.T) {
	tight := DefaultScenario()
	tight.Budget = 40
	tight.Model.MaxConnections = 40
	tight.Start.PoolMaxConns = 8
	tight.Tuning.Bounds.Replicas.Max = 10 // 10 × poolMaxConns.min 2 ≤ 40
	untuned := DefaultScenario()
	untuned.Tuning.Bounds.PoolMaxConns = nil
	untuned.Tuning.Bounds.Replicas.Max = 5 // 5 × 16 ≤ 80
	for name, sc := range map[string]Scenario{"default": DefaultScenario(), "tight budget": tight, "pool not tuned": untuned} {
		for _, tr := range short() {
			for _, pol := range []Policy{Pacer{}, PacerNoCPU{}} {
				res := Run(sc, tr, pol)
				if res.OverBudgetSeconds > 0 || res.PeakConnections > int(sc.Budget) {
					t.Errorf("%s/%s: %d connections at peak, %d seconds over the budget %d", name, tr.Name, res.PeakConnections, res.OverBudgetSeconds, sc.Budget)
				}
				if res.OutOfBounds > 0 {
					t.Errorf("%s/%s: %d decisions left the bounds or changed an untuned setting", name, tr.Name, res.OutOfBounds)
				}
				for _, d := range res.Decisions {
					for _, c := range d.Changes {
						if c.Reason == "" {
							t.Errorf("%s/%s: change without a reason at %.0fs: %+v", name, tr.Name, d.At, c)
						}
						if name == "pool not tuned" && c.Setting == "poolMaxConns" {
							t.Errorf("%s/%s: poolMaxConns changed without bounds", name, tr.Name)
						}
					}
				}
			}
		}
	}
}

// TestRunIsDeterministic: the same scenario, trace and policy give the
// same result.
func TestRunIsDeterministic(t *testing.T) {
	tr := short()[1]
	a, b := Run(DefaultScenario(), tr, Pacer{}), Run(DefaultScenario(), tr, Pacer{})
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("two runs differ (-first +second):\n%s", diff)
	}
}

// TestBudgetCheckCatchesExcess makes sure the checker itself works: a
// static setting over the budget is reported.
func TestBudgetCheckCatchesExcess(t *testing.T) {
	sc := DefaultScenario()
	over := Static{Label: "over", Settings: pacerv1.Settings{Replicas: 6, MaxInFlight: 16, PoolMaxConns: 16, CacheMaxEntries: 4000}}
	res := Run(sc, short()[0], over)
	if res.PeakConnections != 96 || res.OverBudgetSeconds == 0 {
		t.Errorf("peak %d, %d seconds over: want 96 and some", res.PeakConnections, res.OverBudgetSeconds)
	}
}

// TestScoreRecovery checks the scoring of a step: recovery is measured
// from the step to the end of the last violating window after it.
func TestScoreRecovery(t *testing.T) {
	tr := Trace{Name: "t", Steps: []float64{600}, Changes: []float64{600}}
	res := Result{Windows: []WindowResult{
		{End: 600, Served: 10, InObjective: true},
		{End: 615, Served: 10},
		{End: 630, Served: 10},
		{End: 645, Served: 10, InObjective: true},
	}, Decisions: []Applied{
		{At: 615, Changes: []pacerv1.Change{{Setting: "replicas", From: 4, To: 8}}},
		{At: 900, Changes: []pacerv1.Change{{Setting: "replicas", From: 8, To: 7}}},
	}}
	got := Score(tr, res)
	want := Row{Trace: "", WindowsInObjectivePct: 50, ViolatingWindows: 2, RecoverySeconds: 30, Changes: 2, ChangesToRecover: 1,
		Reversals: 1, LoadChanges: 1, ThroughputAtObjective: round((10*600+10*15)/645.0, 1)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("score (-want +got):\n%s", diff)
	}
}
