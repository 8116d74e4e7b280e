package tuning

import (
	"strings"
	"testing"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// One test per failure class of held-out load (issue 17). Each builds the
// situation from windows alone and checks what the tuner decides; each
// failed on the rule-per-trace tuner this one replaced.

// cpuPerReq is the healthy state's CPU per request: 1.4 cores for 375
// req/s per pod.
const cpuPerReq = 1.4 / 375

// at sets w to rate req/s on pods pods at the healthy costs.
func at(w *Window, rate float64, pods int) {
	per := rate / float64(pods)
	w.Pods, w.RequestRate, w.CacheLookupRate = pods, rate, rate
	w.CPUCores = per * cpuPerReq
	w.InFlight = per * 2.8 / 375
	w.PoolAcquired = per * 1.7 / 375
}

func text(d Decision) string {
	s := d.Summary
	for _, c := range d.Changes {
		s += "\n" + c.Reason
	}
	return s
}

// Class 1, memory that outlives its reason: pods that failed a load
// twelve minutes ago, in an incident since over, do not hold the replicas
// up now. The old tuner remembered a failure for an hour while "the load
// still recurred" and kept one more pod than had failed.
func TestClassMemoryExpires(t *testing.T) {
	in := input()
	in.Current.Replicas = 6
	in.Recent = history(in.Window, 60) // 15 minutes
	all(&in, func(w *Window) { at(w, 1500, 6) })
	for i := 45; i < 48; i++ { // 11¾ to 12¼ minutes ago, at 15 s windows
		w := &in.Recent[i]
		at(w, 1500, 5)
		w.P99, w.QueueLength, w.CPUCores = 250*time.Millisecond, 5, 1.95
	}
	d := Decide(in)
	if d.Settings.Replicas >= 6 {
		t.Fatalf("replicas %d, want fewer than 6 (1500 req/s needs 5 at the target):\n%s", d.Settings.Replicas, text(d))
	}
}

// Class 2, means hide bursts: windows whose mean CPU is inside the target
// but that missed the objective while requests queued say the load is
// burstier than its mean. Twice within the violation memory is a pattern:
// the CPU target falls and replicas rise. The old tuner held: the mean
// utilization was within its tolerance band.
func TestClassBurstsInsideTheMean(t *testing.T) {
	in := input()
	all(&in, func(w *Window) { at(w, 1300, 4) }) // 62% of 2 cores
	for _, w := range []*Window{&in.Window, &in.Recent[7]} {
		w.P99, w.QueueLength = 190*time.Millisecond, 3
	}
	d := Decide(in)
	if d.Settings.Replicas <= 4 {
		t.Fatalf("replicas %d, want more than 4:\n%s", d.Settings.Replicas, text(d))
	}
	if !strings.Contains(text(d), "missed the objective with the CPU queueing under the target") {
		t.Errorf("the reason does not say why the target fell:\n%s", text(d))
	}
}

// Class 3, pool starvation read as a slow database: every connection is
// busy and acquires wait, but a query holds its connection no longer than
// usual (the cache stopped hitting, so more requests query). The pool must
// grow. The old tuner saw in-service time double, called the service
// database-bound and froze the pool while requests failed.
func TestClassPoolStarvationIsNotASlowDatabase(t *testing.T) {
	in := input()
	in.Current.PoolMaxConns = 4
	all(&in, func(w *Window) { w.PoolMaxConns = 4 })
	for _, w := range []*Window{&in.Window, &in.Recent[0], &in.Recent[1]} {
		w.CacheHitRatio = 0.02
		w.PoolAcquired = 3.98 // 368 queries/s per pod × 10.8ms
		w.PoolAcquireWait = 30 * time.Millisecond
		w.InFlight, w.QueueLength = 8, 6
		w.P99 = 180 * time.Millisecond
	}
	d := Decide(in)
	if d.Settings.PoolMaxConns <= 4 {
		t.Fatalf("poolMaxConns %d, want it to grow:\n%s", d.Settings.PoolMaxConns, text(d))
	}
	if d.DatabaseBound != "" {
		t.Errorf("called database-bound: %s", d.DatabaseBound)
	}
}

// Class 4, moves planned one step at a time: under a tight budget a 2.5×
// step needs more pods with smaller pools. The tuner plans the whole
// target: it cuts the pool to the planned size in one step (not by halves)
// and says the pods follow; once every pod runs the new pool, the pods
// come in one step too. Two decisions, two changes.
func TestClassWholeTargetUnderATightBudget(t *testing.T) {
	in := input()
	in.MaxTotalConnections = 40 // 4 pods × (pool 8 + 1) = 36
	all(&in, func(w *Window) { at(w, 1500, 4) })
	at(&in.Window, 3750, 4)
	in.Window.CPUCores, in.Window.ShedRate, in.Window.ErrorRate = 2, 1600, 1600
	in.Window.QueueLength, in.Window.P99 = 100, 400*time.Millisecond
	in.Window.CacheLookupRate = 2150
	in.Window.PoolAcquired = 537 * 0.4 * 0.0113 // 537 req/s completed per pod; queries as before
	first := Decide(in)
	if first.Settings.PoolMaxConns > 3 || first.Settings.Replicas != 4 {
		t.Fatalf("first decision %s, want the pool cut to at most 3 at once and the pods waiting for it:\n%s",
			settingsList(first.Settings), text(first))
	}

	// The cut has rolled out: every pod runs the new pool.
	next := input()
	next.MaxTotalConnections = 40
	next.Now = in.Now.Add(time.Minute)
	next.Current = first.Settings
	all(&next, func(w *Window) { at(w, 1500, 4) })
	next.Window = in.Window
	next.Window.End, next.Window.Start = next.Now.Add(-time.Second), next.Now.Add(-time.Second-iv)
	next.Window.PoolMaxConns = int(first.Settings.PoolMaxConns)
	next.History = []pacerv1.Decision{applied(in.Now, first.Changes...)}
	second := Decide(next)
	R := second.Settings.Replicas
	if R < 9 || tuneWorstCase(second.Settings) > 40 {
		t.Fatalf("second decision %s, want the 9 or more pods 3750 req/s needs, within 40 connections:\n%s", settingsList(second.Settings), text(second))
	}
	if n := len(first.Changes) + len(second.Changes); n > 3 {
		t.Errorf("%d changes, want at most 3", n)
	}
}

func tuneWorstCase(s pacerv1.Settings) int64 { return WorstCaseConnections(s.Replicas, s.PoolMaxConns) }

// Class 5, interval-dependence: a ramp is projected where it will be one
// interval on at 30 s and 60 s intervals too. The old trend rule wanted
// three windows inside a fixed 60 s, so it never fired at 30 s or more.
func TestClassRampIsSeenAtEveryInterval(t *testing.T) {
	for _, interval := range []time.Duration{30 * time.Second, 60 * time.Second} {
		t.Run(interval.String(), func(t *testing.T) {
			in := input()
			in.Current.Replicas = 6
			in.Tuning.Interval.Duration = interval
			w := healthy(t0)
			w.Start = w.End.Add(-interval)
			in.Window, in.Recent = w, nil
			for i := range 20 {
				x := w
				x.End = w.End.Add(-time.Duration(i) * interval)
				x.Start = x.End.Add(-interval)
				// 2400 req/s now, rising 4 req/s per second for the last
				// four minutes, flat at 1440 before.
				age := w.End.Sub(x.End).Seconds()
				at(&x, 2400-4*min(age, 240), 6)
				if i == 0 {
					in.Window = x
				} else {
					in.Recent = append(in.Recent, x)
				}
			}
			d := Decide(in)
			if d.Settings.Replicas <= 6 || !strings.Contains(text(d), "rising") {
				t.Fatalf("replicas %d, want a rise that projects the ramp:\n%s", d.Settings.Replicas, text(d))
			}
		})
	}
}

// Class 5, no CPU limit: the tuner is not told a pod's CPU, but requests
// take three times their least CPU time in service and p99 is over the
// objective: the CPU is saturated, and pods are added. The old tuner, with
// no CPU figure, read the busy share of a large worker limit (here 7 of
// 64) and saw an idle service.
func TestClassNoCPULimitStillScales(t *testing.T) {
	in := input()
	in.PodCPU = 0
	in.Current.MaxInFlight = 64
	all(&in, func(w *Window) { at(w, 1500, 4); w.WorkerLimit = 64 })
	for _, w := range []*Window{&in.Window, &in.Recent[0], &in.Recent[1]} {
		at(w, 2000, 4)
		w.CPUCores = 1.95
		w.InFlight = 500 * (3 * cpuPerReq * 500 / 540) // in service 3× the least CPU time
		w.InFlight += 500 * 0.4 * 0.011
		w.P99 = 160 * time.Millisecond
	}
	d := Decide(in)
	if d.Settings.Replicas <= 4 {
		t.Fatalf("replicas %d, want more than 4:\n%s", d.Settings.Replicas, text(d))
	}
}

// Reversals: a cut the tuner had to revert is not tried again
// within the scale-down window, however the model reads the next windows.
func TestNoRetryAfterARevert(t *testing.T) {
	in := input()
	all(&in, func(w *Window) { at(w, 750, 4) })
	in.History = []pacerv1.Decision{
		applied(in.Now.Add(-30*time.Second), pacerv1.Change{Setting: SettingReplicas, From: 3, To: 4, Source: pacerv1.ChangeByRevert, Reason: RevertPrefix + "p99 rose"}),
		applied(in.Now.Add(-4*time.Minute), pacerv1.Change{Setting: SettingReplicas, From: 4, To: 3, Source: pacerv1.ChangeByTuner}),
	}
	if d := Decide(in); d.Settings.Replicas < 4 {
		t.Fatalf("replicas cut again to %d within the scale-down window of a revert:\n%s", d.Settings.Replicas, text(d))
	}
	in.Now = in.Now.Add(5 * time.Minute)
	all(&in, func(w *Window) { w.End, w.Start = w.End.Add(5*time.Minute), w.Start.Add(5*time.Minute) })
	if d := Decide(in); d.Settings.Replicas >= 4 {
		t.Fatalf("replicas %d five minutes after the revert, want the cut the load allows:\n%s", d.Settings.Replicas, text(d))
	}
}

// Reversals: a raise counts for the whole scale-down window, as the HPA
// keeps the recommendations it acted on. A raise made for where a rising
// load would be was cut the next interval, when the rise had paused
// (generated ramp under a tight budget: 5 → 7 → 6 → 7 in six minutes).
func TestNoCutWithinTheScaleDownWindowOfARaise(t *testing.T) {
	in := input()
	all(&in, func(w *Window) { at(w, 750, 4) }) // 750 req/s: 2 pods carry it
	in.Current.Replicas = 4
	in.History = []pacerv1.Decision{
		applied(in.Now.Add(-30*time.Second), pacerv1.Change{Setting: SettingReplicas, From: 3, To: 4, Source: pacerv1.ChangeByTuner}),
	}
	if d := Decide(in); d.Settings.Replicas < 4 {
		t.Fatalf("replicas cut to %d 30 s after a raise to 4:\n%s", d.Settings.Replicas, text(d))
	}
	in.History[0].Time.Time = in.Now.Add(-6 * time.Minute)
	if d := Decide(in); d.Settings.Replicas >= 4 {
		t.Fatalf("replicas %d six minutes after the raise, want the cut the load allows:\n%s", d.Settings.Replicas, text(d))
	}
}

// Live class, a fixed CPU part read as a per-request cost: pods with a
// fixed CPU overhead cost more per request at low load than at high load.
// Fitted as a proportional cost, the difference across a step's windows
// became an uncertainty band of 44% that held two pods at 98-99% CPU
// against a 70% target for 40 s (make demo-compare); taking the tolerance
// alone overshot (4 → 8). Fitted as a fixed part and a per-request part,
// the step's windows agree: the pods grow to what the target needs.
func TestClassFixedCPUIsNotUncertainty(t *testing.T) {
	in := input()
	load := func(w *Window, rate float64) {
		per := rate / 4
		w.RequestRate, w.CacheLookupRate = rate, rate
		w.CPUCores = 0.5 + per*0.002 // a fixed half core, then 2 ms a request
		w.InFlight = per * 0.004
		w.PoolAcquired = per * 1.7 / 375
	}
	all(&in, func(w *Window) { load(w, 700) })                     // 42% of 2 cores
	latest(&in, 30*time.Second, func(w *Window) { load(w, 2400) }) // 85%, for the last three windows
	d := Decide(in)
	// 2400 req/s at 70% of 2 cores: (1.4 − 0.5) / 2 ms = 450 req/s a pod, 6 pods.
	if d.Settings.Replicas != 6 {
		t.Fatalf("replicas %d at 85%% CPU against a 70%% target, want 6 (0.5 cores fixed, 2 ms a request):\n%s", d.Settings.Replicas, text(d))
	}
}

// Class 4 under a tight budget, the plan when no plan meets the targets:
// 4465 req/s of 3 ms CPU requests (35% query the database for 11 ms) on
// pods of 2 cores, a budget of 30 connections. Every plan misses a target,
// and ranked by what it carries at the targets (the pool's wait criterion
// the stricter), the tuner chose 7 pods × 3 connections: the CPU 96% busy,
// violating for 15 minutes where 10 pods × 2 connections (the pool ~75%
// busy, the CPU 67%) met the objective in the simulator.
func TestClassOutOfReachPlansShortOfSaturation(t *testing.T) {
	in := input()
	in.MaxTotalConnections = 30
	p := resolve(in)
	m := model{cpu: 0.003, cores: 2, cpuTarget: 0.7, poolTarget: 0.7, miss: 0.35, query: 0.011, carries: map[int32]float64{}}
	pl := p.plan(m, 4465, in.Current)
	if pl.limited == "" {
		t.Fatalf("the plan meets the targets (%s): the case needs one that cannot", pl.describe())
	}
	if pl.replicas != 10 || pl.pool != 2 {
		t.Fatalf("plan %s with pool %d, want 10 pods with 2 connections each (the most carried short of saturation)", pl.describe(), pl.pool)
	}
}

// Worker limits sized to the load before a rise: a limit cut to what the
// quietest recent load keeps in flight sheds the next rise before new pods
// are ready. The limit is a property of the pod: a cut leaves what a pod
// keeps in flight at the most it carries. The old tuner cut 24 workers to
// 6, 1.5× twice the in-flight of a load a quarter of that (on the
// generated development split, steps and alternating levels then shed at
// each rise).
func TestClassWorkerCutsLeaveThePodItsCeiling(t *testing.T) {
	decide := func(workers int32) Decision {
		in := input()
		in.Current.MaxInFlight, in.Current.PoolMaxConns = workers, 2
		all(&in, func(w *Window) {
			at(w, 400, 4) // 100 req/s a pod: a quarter of what it carries
			w.WorkerLimit, w.PoolMaxConns, w.PoolAcquired = int(workers), 2, 0.45
		})
		return Decide(in)
	}
	// A pod's ceiling is 90% of 2 cores at cpuPerReq: 482 req/s. At the
	// healthy in-service time (2.8 in flight at 375 req/s: 7.5 ms) it
	// keeps at least 3.6 in flight, and the limit is twice what it keeps.
	least := 2 * (0.9 * 2 / cpuPerReq) * (2.8 / 375) // 7.2
	if d := decide(24); float64(d.Settings.MaxInFlight) < least {
		t.Fatalf("maxInFlight 24 → %d, want at least %.1f (what a pod keeps in flight at its ceiling, twice):\n%s", d.Settings.MaxInFlight, least, text(d))
	}
	if d := decide(256); d.Settings.MaxInFlight >= 256 {
		t.Fatalf("maxInFlight %d: 256 is far above what a pod carries and should be cut:\n%s", d.Settings.MaxInFlight, text(d))
	}
}

// A pod whose fixed CPU alone is over the target: no count of pods meets
// it, and the reason says so instead of a count (it said "the CPU needs
// 2147483647 pods").
func TestPlanSaysWhenAPodsFixedCPUIsOverTheTarget(t *testing.T) {
	in := input()
	p := resolve(in)
	m := model{cpu: 0.002, base: 1.6, cores: 2, cpuTarget: 0.7, poolTarget: 0.7, carries: map[int32]float64{}}
	pl := p.plan(m, 400, in.Current)
	if !strings.Contains(pl.limited, "at any load") || strings.Contains(pl.limited, "2147483647") {
		t.Fatalf("limited %q, want the pod's fixed CPU named as what binds", pl.limited)
	}
}

// At the connection budget's edge the database binds: no pod can be added
// and no pool can grow, and the pods sit at the objective. The cache is
// the one lever left (every hit is a query the pool no longer carries), so
// it grows on an eviction share too small to matter elsewhere, and a CPU
// over its target does not hold it (a rollout's blind windows cost nothing
// when no other setting can act). The tuner held it at 8000 for good.
func TestClassCacheIsTheLastLeverWhenTheDatabaseBinds(t *testing.T) {
	in := input()
	in.MaxTotalConnections = 12 // 4 pods × (pool 2 + 1): a fifth pod does not fit
	in.Current.PoolMaxConns = 2
	all(&in, func(w *Window) {
		at(w, 1500, 4)
		w.PoolMaxConns, w.PoolAcquired = 2, 1.7
		w.PoolAcquireWait = 4 * time.Millisecond
		w.P99 = 95 * time.Millisecond
		w.CPUCores = 1.44                              // 72%: over the 70% target
		w.CacheEvictionRate = 0.05 * w.CacheLookupRate // 5% of lookups
	})
	d := Decide(in)
	if d.Settings.CacheMaxEntries <= 8000 || d.Settings.Replicas != 4 || d.Settings.PoolMaxConns != 2 {
		t.Fatalf("settings %s, want the cache grown and the rest held:\n%s", settingsList(d.Settings), text(d))
	}
	if !strings.Contains(text(d), "the database binds") {
		t.Errorf("the reason does not say why a small eviction share grows the cache:\n%s", text(d))
	}

	// Where the pool can still grow, the same eviction share is no reason.
	in.MaxTotalConnections = 80
	if d := Decide(in); d.Settings.CacheMaxEntries != 8000 {
		t.Errorf("cache %d with room in the budget, want 8000:\n%s", d.Settings.CacheMaxEntries, text(d))
	}
}

// A step is not a ramp: demand that stepped up 1.7× two minutes ago and
// has held since (its last windows rising by noise alone) fits a
// significant slope over the trend window too. The tuner sizes for the
// level, not for where that slope would take it: projecting a rise that
// has stopped added pods after the step was met, and cut them later.
func TestClassAStepIsNotARamp(t *testing.T) {
	const interval = 30 * time.Second
	in := input()
	in.Current.Replicas = 6
	in.Tuning.Interval.Duration = interval
	in.Recent = nil
	for i := range 10 {
		x := healthy(t0.Add(-time.Duration(i) * interval))
		x.Start = x.End.Add(-interval)
		rate := 1500.0
		if i < 4 {
			rate = 2550 - 10*float64(i) // stepped; the last three rise by noise
		}
		at(&x, rate, 6)
		if i == 0 {
			in.Window = x
		} else {
			in.Recent = append(in.Recent, x)
		}
	}
	d := Decide(in)
	if strings.Contains(text(d), "rising") || d.Settings.Replicas != 7 {
		t.Fatalf("replicas %d, want 7 (2550 req/s at 70%% of 2 cores) and no projected rise:\n%s", d.Settings.Replicas, text(d))
	}
}

// Without a CPU limit, a p99 the database makes is not the CPU's knee: a
// query slowdown that brings p99 near the objective at an unchanged CPU
// use once read as the pod saturating at the CPU it used, and added pods
// that could not make a query faster (and kept them while the knee was
// remembered).
func TestClassASlowDatabaseIsNotTheCPUsKnee(t *testing.T) {
	in := input()
	in.PodCPU = 0
	in.Current.MaxInFlight = 64
	all(&in, func(w *Window) { at(w, 1500, 4); w.WorkerLimit = 64 })
	latest(&in, 3*time.Minute, func(w *Window) {
		const per, miss, query = 375.0, 0.4, 0.034 // queries 3× slower
		w.PoolAcquired = per * miss * query
		w.InFlight = per * (0.003 + miss*query)
		w.P99 = 85 * time.Millisecond
	})
	d := Decide(in)
	if d.Settings.Replicas > 4 {
		t.Fatalf("replicas %d, want at most 4: the CPU did not change:\n%s", d.Settings.Replicas, text(d))
	}
}

// Reversals at a budget's edge: a pool cut that made room for more pods
// is the first half of a growth. When the window after it shows the
// smaller pool full (the pods it made room for are not there yet), the
// pods follow; the cut is not reverted. Reverting it undid the room, the
// next decision cut the pool again for the same pods, and so on (generated
// alternating load with slow queries: cut, revert, cut, revert).
func TestClassARoomCutIsFollowedNotReverted(t *testing.T) {
	in := input()
	in.MaxTotalConnections = 40 // 4 × (8 + 1) fit; 5 pods fit only at pool 6
	in.Current.PoolMaxConns = 6
	all(&in, func(w *Window) { at(w, 1700, 4) }) // 79% CPU: 5 pods at the 70% target
	in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingPool, From: 8, To: 6, Reason: "room", Source: pacerv1.ChangeByBudget})}
	in.Window.PoolMaxConns, in.Window.PoolAcquired = 6, 5.9
	in.Window.PoolAcquireWait = 20 * time.Millisecond
	in.Window.P99 = 140 * time.Millisecond
	d := Decide(in)
	if d.Settings.PoolMaxConns != 6 || d.Settings.Replicas <= 4 {
		t.Fatalf("settings %s, want the pool kept at 6 and the pods it made room for:\n%s", settingsList(d.Settings), text(d))
	}
}

// Class 4, a plan carried out in stages is judged against its own first
// stage: under a budget of 37 connections, 5000 req/s need more pods than
// fit (12 at 3 connections each, the CPU short of saturation). A rollout
// let the pods in only as they switched pools, 11 so far of the 12 the
// decision planned; the next decision weighed 12 against the 11 in effect,
// found 12 not clearly more capacity (within the plan's tolerance) and kept
// 11, missing the objective for the rest of the load (generated tight
// budget traces). The plan in flight is the choice to hold to.
func TestClassAStagedPlanIsNotJudgedAgainstItsFirstStage(t *testing.T) {
	in := input()
	in.MaxTotalConnections = 37
	in.Current.Replicas, in.Current.PoolMaxConns = 11, 2
	all(&in, func(w *Window) { at(w, 5000, 11); w.PoolMaxConns, w.PoolAcquired = 2, 1.7 })
	in.Window.P99, in.Window.PoolAcquireWait = 130*time.Millisecond, 20*time.Millisecond
	if d := Decide(in); d.Settings.Replicas != 11 {
		t.Fatalf("without a plan in flight: replicas %d, want the 11 in effect kept (the case needs a plan's tolerance to hold):\n%s", d.Settings.Replicas, text(d))
	}
	staged := in.Current
	staged.Replicas = 12
	in.Staged = &staged
	d := Decide(in)
	if d.Settings.Replicas != 12 {
		t.Fatalf("with 12 planned and 11 reached: replicas %d, want 12:\n%s", d.Settings.Replicas, text(d))
	}
}
