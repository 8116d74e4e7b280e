package sim

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// short cuts a trace to its first 15 scored minutes (every load change of
// the step and spike traces included).
func short(tr Trace) Trace {
	tr.Warmup, tr.Duration = 2*time.Minute, 15*time.Minute
	return tr
}

func variant(t *testing.T, name string) Variant {
	t.Helper()
	for _, v := range Variants() {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no variant %q", name)
	return Variant{}
}

func trace(t *testing.T, name string) Trace {
	t.Helper()
	for _, tr := range Traces() {
		if tr.Name == name {
			return short(tr)
		}
	}
	t.Fatalf("no trace %q", name)
	return Trace{}
}

// TestPacerSafety runs the tuner through every trace, with the spec's
// budget and bounds, a tighter budget, and an untuned pool, and checks
// what it decides: pods × poolMaxConns never over the budget, no tuned
// setting out of its bounds, no untuned setting changed, a reason for
// every change. (Whether the pods' connections stay under
// max_connections while a config propagates is the scorecard's
// "connection budget" target.)
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
		for _, tr := range Traces() {
			if tr.Adjust != nil {
				continue // they set their own budget
			}
			res := Run(sc, short(tr), Pacer{})
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
					if name == "pool not tuned" && c.Setting == tuning.SettingPool {
						t.Errorf("%s/%s: poolMaxConns changed without bounds", name, tr.Name)
					}
				}
			}
		}
	}
}

// TestRunIsDeterministic: the same scenario, seed, trace and policy give
// the same result; another seed gives other arrivals and other measured
// quantiles.
func TestRunIsDeterministic(t *testing.T) {
	tr := trace(t, "step-up-2x")
	a, b := Run(DefaultScenario(), tr, Pacer{}), Run(DefaultScenario(), tr, Pacer{})
	if diff := cmp.Diff(a, b, cmp.Comparer(func(x, y float64) bool { return x == y || (math.IsNaN(x) && math.IsNaN(y)) })); diff != "" {
		t.Errorf("two runs differ (-first +second):\n%s", diff)
	}
	other := DefaultScenario()
	other.Seed = 2
	c := Run(other, tr, Pacer{})
	same := 0
	for i := range a.Windows {
		if a.Windows[i].P99 == c.Windows[i].P99 && a.Windows[i].Arrived == c.Windows[i].Arrived {
			same++
		}
	}
	if same == len(a.Windows) {
		t.Errorf("seed 2 gave the same windows as seed 1")
	}
}

// TestBudgetRefusalFails: pools that want more connections than
// max_connections allows are refused, and the requests that needed them
// fail and count against the policy; the same setting with room to spare
// refuses nothing.
func TestBudgetRefusalFails(t *testing.T) {
	tr := short(Trace{Name: "slow-db", Load: func(float64) Load { return Load{Rate: BaseRate, DBSlow: 3} }})
	over := Static{Label: "over", Settings: pacerv1.Settings{Replicas: 4, MaxInFlight: 64, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 4000, QueueDepth: 256}}

	sc := DefaultScenario()
	sc.Model.MaxConnections, sc.Budget = 20, 20
	res := Run(sc, tr, over)
	if res.RefusedRequests <= 0 || res.RefusedSeconds == 0 || math.IsNaN(res.FirstRefusal) {
		t.Fatalf("max_connections 20 under 4 pools of 16 on a slow database: %.0f refused requests in %d s (first at %v), want some",
			res.RefusedRequests, res.RefusedSeconds, res.FirstRefusal)
	}
	if Score(tr, res).ViolatingWindows == 0 {
		t.Errorf("refused requests did not count as violations")
	}
	failed := 0.0
	for _, w := range res.Windows {
		failed += w.Failed
	}
	if failed == 0 {
		t.Errorf("windows show no failed requests although %.0f were refused", res.RefusedRequests)
	}

	roomy := DefaultScenario()
	roomy.Model.MaxConnections = 200
	if res := Run(roomy, tr, over); res.RefusedRequests != 0 {
		t.Errorf("max_connections 200: %.0f refused requests, want none", res.RefusedRequests)
	}
}

// TestHistogramQuantileInterpolates checks Prometheus's
// histogram_quantile on pacer-api's buckets: linear within the bucket
// holding the rank, the highest finite bound for the +Inf bucket, nothing
// without observations.
func TestHistogramQuantileInterpolates(t *testing.T) {
	cum := make([]float64, len(buckets)+1)
	// 90 requests ≤ 0.5ms, none in (0.5ms, 1ms], 10 in (1ms, 2ms].
	for i := range cum {
		switch {
		case i < 2:
			cum[i] = 90
		default:
			cum[i] = 100
		}
	}
	if got, ok := histogramQuantile(0.99, cum); !ok || math.Abs(got-0.0019) > 1e-12 {
		t.Errorf("p99 = %v, %v; want 1ms + 1ms × 9/10 = 1.9ms", got, ok)
	}
	if got, _ := histogramQuantile(0.5, cum); math.Abs(got-0.0005*50/90) > 1e-12 {
		t.Errorf("p50 = %v, want 0.5ms × 50/90", got)
	}
	inf := make([]float64, len(buckets)+1)
	inf[len(inf)-1] = 10
	if got, _ := histogramQuantile(0.99, inf); got != buckets[len(buckets)-1] {
		t.Errorf("p99 in +Inf = %v, want the highest bound %v", got, buckets[len(buckets)-1])
	}
	if _, ok := histogramQuantile(0.99, make([]float64, len(buckets)+1)); ok {
		t.Errorf("an empty histogram gave a quantile")
	}
}

// TestSampledHistogramNoise: many requests give the distribution's p99
// within its bucket; few requests give a p99 that moves from draw to
// draw; the same stream gives the same draw.
func TestSampledHistogramNoise(t *testing.T) {
	// Exponential latency, mean 20ms: p99 = 20ms × ln 100 ≈ 92ms, in (75ms, 100ms].
	cs := []component{{weight: 1, a: 0.020}}
	rng := rand.New(rand.NewPCG(1, 2))
	p99, _ := histogramQuantile(0.99, sampleHistogram(cs, 1_000_000, rng))
	if p99 <= 0.075 || p99 > 0.1 {
		t.Errorf("p99 of 1e6 requests = %v, want within (75ms, 100ms]", p99)
	}
	seen := map[float64]bool{}
	for range 20 {
		q, _ := histogramQuantile(0.99, sampleHistogram(cs, 200, rng))
		seen[q] = true
	}
	if len(seen) < 3 {
		t.Errorf("p99 of 200 requests took %d values in 20 draws, want sampling noise", len(seen))
	}
	a := sampleHistogram(cs, 500, rand.New(rand.NewPCG(7, 7)))
	b := sampleHistogram(cs, 500, rand.New(rand.NewPCG(7, 7)))
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same stream, different histograms:\n%s", diff)
	}
	if a[len(a)-1] != 500 {
		t.Errorf("histogram counts %v requests, want 500", a[len(a)-1])
	}
}

// oneChange raises maxInFlight at the first window it sees, then records
// the windows.
type oneChange struct{ seen *[]tuning.Window }

func (oneChange) Name() string { return "one-change" }
func (o oneChange) Start(sc Scenario) (pacerv1.Settings, Controller) {
	return sc.Start, &oneChangeCtl{seen: o.seen}
}

type oneChangeCtl struct {
	seen *[]tuning.Window
	done bool
}

func (c *oneChangeCtl) Step(s Step) tuning.Decision {
	if s.Window == nil {
		return hold(s)
	}
	*c.seen = append(*c.seen, *s.Window)
	next := s.Current
	if !c.done {
		c.done = true
		next.MaxInFlight = 32
	}
	return tuning.Decision{Settings: next}
}

// TestConfigReachesPodsOneByOne: after a change, windows are insufficient
// while some pods still run the old config, and the change is whole only
// after the propagation delay.
func TestConfigReachesPodsOneByOne(t *testing.T) {
	var seen []tuning.Window
	sc := DefaultScenario()
	sc.Model.ConfigDelay, sc.Model.ConfigSpread = 5, 40
	Run(sc, short(Trace{Name: "flat", Load: func(float64) Load { return normal(BaseRate) }}), oneChange{&seen})
	// Windows of 15 s: the change at the end of window 0 reaches the
	// pods within 5–45 s, so windows 1–3 may be mixed, window 4 is not.
	insufficient := 0
	for i, w := range seen[1:5] {
		if !w.Sufficient {
			insufficient++
			if w.Reason == "" {
				t.Errorf("window %d insufficient without a reason", i+1)
			}
		}
	}
	if insufficient == 0 {
		t.Errorf("no window was insufficient while the config propagated")
	}
	if w := seen[4]; !w.Sufficient || w.WorkerLimit != 32 {
		t.Errorf("window 4: sufficient %v with worker limit %d, want true and 32", w.Sufficient, w.WorkerLimit)
	}

	seen = nil
	sc.Model.ConfigDelay, sc.Model.ConfigSpread = 0, 0
	Run(sc, short(Trace{Name: "flat", Load: func(float64) Load { return normal(BaseRate) }}), oneChange{&seen})
	if w := seen[1]; !w.Sufficient || w.WorkerLimit != 32 {
		t.Errorf("without delay, window 1: sufficient %v with worker limit %d, want true and 32", w.Sufficient, w.WorkerLimit)
	}
}

// TestKPAPanics: a sudden rise in the requests in the pods makes
// kpa-like scale up within its 6 s panic window, long before the 60 s
// stable window would; in panic it does not scale down.
func TestKPAPanics(t *testing.T) {
	sc := DefaultScenario()
	_, ctl := KPALike{Fixed: Fixed{Workers: 16, Pool: 4, Cache: 4000, Target: 4}}.Start(sc)
	cur := pacerv1.Settings{Replicas: 4}
	now := epoch
	step := func(conc float64) tuning.Decision {
		now = now.Add(time.Second)
		d := ctl.Step(Step{Now: now, Current: cur, Ready: int(cur.Replicas), Concurrency: conc})
		cur = d.Settings
		return d
	}
	for range 60 {
		step(16) // 4 per pod: on target
	}
	if cur.Replicas != 4 {
		t.Fatalf("on target: %d replicas, want 4", cur.Replicas)
	}
	for i := range 6 {
		step(64)
		if i == 5 && cur.Replicas < 8 {
			t.Errorf("6 s of 4× the requests: %d replicas, want ≥ 8 (panic)", cur.Replicas)
		}
	}
	up := cur.Replicas
	for range 20 {
		step(16)
	}
	if cur.Replicas < up {
		t.Errorf("scaled down to %d within the panic's 60 s (from %d)", cur.Replicas, up)
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

// TestTargetsSayWhenNotMet: the targets are checked on every seed, so one
// bad seed fails them.
func TestTargetsSayWhenNotMet(t *testing.T) {
	opt := Options{Traces: []Trace{{Name: "a", Step2x: true}}, Variants: []Variant{variant(t, DefaultVariant)}, Seeds: []uint64{1, 2}}
	row := func(policy string, seed uint64, vw int, ps float64) Row {
		return Row{Trace: "a", Policy: policy, Seed: seed, Variant: DefaultVariant, ViolatingWindows: vw, PodSeconds: ps, ConnectionBudget: 80, PeakConnections: 40}
	}
	rows := []Row{
		row("pacer", 1, 1, 100), row("static-best", 1, 0, 100), row("hpa-like", 1, 4, 100), row("kpa-like", 1, 6, 100),
		row("pacer", 2, 3, 120), row("static-best", 2, 0, 100), row("hpa-like", 2, 4, 100), row("kpa-like", 2, 6, 100),
	}
	rows[4].RefusedSeconds = 2
	met := map[string]bool{}
	for _, tg := range Targets(Card{Options: opt, Rows: rows}) {
		met[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"connection budget":                        false, // seed 2 refused connections
		"violating windows vs the better baseline": false, // seed 2: 3 > 4/2
		"pod-seconds vs static-best":               false, // seed 2: 1.2×
		"recovery after a 2× step":                 true,
		"reversals per load change":                true,
	}
	if diff := cmp.Diff(want, met); diff != "" {
		t.Errorf("targets met (-want +got):\n%s", diff)
	}
}

// TestRecoveryTargetNamesTheBestBaseline: a missed recovery names the
// trace and says whether an adaptive baseline recovered in time, so a
// reader can tell a miss of the tuner from a step out of reach for all.
func TestRecoveryTargetNamesTheBestBaseline(t *testing.T) {
	opt := Options{Traces: []Trace{{Name: "a", Step2x: true}, {Name: "b", Step2x: true}}, Variants: []Variant{variant(t, DefaultVariant)}, Seeds: []uint64{1}}
	row := func(trace, policy string, rec float64) Row {
		return Row{Trace: trace, Policy: policy, Seed: 1, Variant: DefaultVariant, RecoverySeconds: rec, ChangesToRecover: 2, ConnectionBudget: 80}
	}
	rows := []Row{
		row("a", "pacer", 90), row("a", "static-best", 0), row("a", "hpa-like", 120), row("a", "kpa-like", 30),
		row("b", "pacer", 200), row("b", "static-best", 0), row("b", "hpa-like", 150), row("b", "kpa-like", 300),
	}
	for _, tg := range Targets(Card{Options: opt, Rows: rows}) {
		if tg.Name != "recovery after a 2× step" {
			continue
		}
		want := "worst 200 s, 2 changes; over on a (90 s, 2 changes; kpa-like 30 s), b (200 s, 2 changes; no baseline within 60 s, best hpa-like 150 s)"
		if tg.Met || tg.Got != want {
			t.Errorf("recovery target met=%v got %q, want not met and %q", tg.Met, tg.Got, want)
		}
		return
	}
	t.Fatal("no recovery target")
}

func BenchmarkRun(b *testing.B) {
	tr := Traces()[1]
	for b.Loop() {
		Run(DefaultScenario(), tr, Pacer{})
	}
}

// TestScorecardRows: one row per trace, policy, seed and variant, each
// naming its seed and variant; a variant that cannot change a static
// setting shares the base case's static-best rows.
func TestScorecardRows(t *testing.T) {
	sweep := DefaultSweep()
	sweep.Workers, sweep.Pool, sweep.Cache = []int32{16}, []int32{4, 8}, []int32{4000}
	sweep.HPA, sweep.KPA = sweep.HPA[:2], sweep.KPA[:2]
	opt := Options{
		Traces:   []Trace{trace(t, "steady"), trace(t, "step-up-2x")},
		Variants: []Variant{variant(t, DefaultVariant), variant(t, "pod-start-60s@30s")},
		Seeds:    []uint64{1, 2},
		Sweep:    sweep,
	}
	card := Scorecard(DefaultScenario(), opt)
	type key struct {
		trace, policy, variant string
		seed                   uint64
	}
	seen := map[key]Row{}
	for _, r := range card.Rows {
		k := key{r.Trace, r.Policy, r.Variant, r.Seed}
		if _, dup := seen[k]; dup {
			t.Errorf("two rows for %+v", k)
		}
		seen[k] = r
	}
	for _, tr := range opt.Traces {
		for _, p := range Policies {
			for _, v := range opt.Variants {
				for _, s := range opt.Seeds {
					if _, ok := seen[key{tr.Name, p, v.Name, s}]; !ok {
						t.Errorf("no row for %s/%s/%s/seed %d", tr.Name, p, v.Name, s)
					}
				}
			}
			if p == "static-best" {
				a, b := seen[key{tr.Name, p, DefaultVariant, 1}], seen[key{tr.Name, p, "pod-start-60s@30s", 1}]
				a.Variant = b.Variant
				if diff := cmp.Diff(a, b); diff != "" {
					t.Errorf("%s: static-best differs with slower pod starts (-default +pod-start-60s):\n%s", tr.Name, diff)
				}
			}
		}
	}
	if len(card.Rows) != 2*4*2*2 {
		t.Errorf("%d rows, want %d", len(card.Rows), 2*4*2*2)
	}
	if card.Example.Trace != "step-up-2x" || len(card.Example.Decisions) == 0 {
		t.Errorf("example run: %q with %d decisions, want pacer's step-up-2x with some", card.Example.Trace, len(card.Example.Decisions))
	}
}

// Reversals (issue 17, class 6): on a collapse of the cache's hit ratio,
// on a slow database and under a tight connection budget, the tuner
// changes a setting's direction at most once per change of the load. The
// development split's traces of those families, at the CRD's default
// interval, with and without a CPU limit.
func TestReversalsOnCacheCollapseAndDatabaseBoundLoad(t *testing.T) {
	n := 0
	for _, tr := range Generate(DevSplit) {
		if !strings.Contains(tr.Name, "slow-db") && !strings.Contains(tr.Name, "cache-collapse") && !strings.Contains(tr.Name, "tight-budget") {
			continue
		}
		n++
		for _, limit := range []bool{true, false} {
			sc := DefaultScenario()
			sc.Tuning.Interval.Duration = 30 * time.Second
			sc.NoCPULimit = !limit
			res := Run(sc, tr, Pacer{})
			if row := Score(tr.withDefaults(), res); row.Reversals > row.LoadChanges {
				t.Errorf("%s (CPU limit %v): %d reversals for %d load changes", tr.Name, limit, row.Reversals, row.LoadChanges)
				for _, d := range res.Decisions {
					t.Logf("  t=%.0f %s", d.At, d.Summary)
				}
			}
		}
	}
	if n < 20 {
		t.Fatalf("only %d traces of those families in the development split", n)
	}
}

// TestPacerSeesAStepWithinItsPanicHorizon: at a 60 s interval, a 2.5×
// step in the middle of an interval is answered within the panic
// horizon, not at the interval's end. The tuner that observed once per
// interval acted 35 s after this step; Knative's KPA acts within 6 s.
// The scored windows stay one interval long.
func TestPacerSeesAStepWithinItsPanicHorizon(t *testing.T) {
	const at = 625.0 // seconds: 25 s into an interval of 60 s
	tr := Trace{Name: "mid-interval-step", Warmup: 4 * time.Minute, Duration: 15 * time.Minute,
		Load: func(s float64) Load {
			if s >= at {
				return normal(2.5 * BaseRate)
			}
			return normal(BaseRate)
		}}
	sc := variant(t, "default@60s").Scenario(DefaultScenario())
	res := Run(sc, tr, Pacer{})
	first := math.Inf(1)
	for _, d := range res.Decisions {
		if d.At > at {
			for _, c := range d.Changes {
				if c.Setting == tuning.SettingReplicas && c.To > c.From {
					first = math.Min(first, d.At)
				}
			}
		}
	}
	if first-at > 20 {
		t.Errorf("the first scale-up came %.0f s after the step, want ≤ 20 s (two windows of the panic horizon); decisions: %+v", first-at, res.Decisions)
	}
	for i, w := range res.Windows {
		if want := float64(i+1) * 60; w.End != want {
			t.Fatalf("scored window %d ends at %.0f s, want %.0f s (one interval each)", i, w.End, want)
		}
	}
}
