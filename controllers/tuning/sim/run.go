package sim

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// epoch is simulated time zero (the start of the scored part).
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// keptWindows is how many past windows the simulated reconciler passes as
// Input.Recent: more than the 5m scale-down window at 15s.
const keptWindows = 40

// WindowResult is one scored window.
type WindowResult struct {
	End         float64 // seconds into the scored part
	P99         float64 // seconds
	Arrived     float64 // requests per second
	Served      float64
	Failed      float64 // shed or timed out, per second
	Pods        int
	InObjective bool
	Settings    pacerv1.Settings
}

// Applied is one decision that changed something.
type Applied struct {
	At      float64 // seconds into the scored part (negative in warm-up)
	Changes []pacerv1.Change
	Summary string
}

// Result is one run of one policy on one trace.
type Result struct {
	Trace, Policy string
	Windows       []WindowResult
	Decisions     []Applied // scored part only
	// PodSeconds counts every pod, starting ones included, over the scored part.
	PodSeconds float64
	// PeakConnections is the most connections the pools may open at once
	// (pods, starting ones included, × poolMaxConns), over the whole run.
	PeakConnections int
	Budget          int
	// OverBudgetSeconds counts seconds with PeakConnections' figure over the budget.
	OverBudgetSeconds int
	// OutOfBounds counts decisions that chose a tuned setting outside its
	// bounds, or changed a setting without bounds.
	OutOfBounds int
}

type pod struct{ readyAt float64 }

// Run simulates one policy on one trace.
func Run(sc Scenario, tr Trace, pol Policy) Result {
	tr = tr.withDefaults()
	m := sc.Model
	h := fnv.New64a()
	h.Write([]byte(tr.Name))
	rng := rand.New(rand.NewPCG(sc.Seed, h.Sum64()))
	iv := sc.interval().Seconds()
	objective := sc.Tuning.Objective.LatencyP99.Seconds()

	res := Result{Trace: tr.Name, Policy: pol.Name(), Budget: int(sc.Budget)}
	cur := pol.Start(sc)
	pods := make([]pod, cur.Replicas)
	for i := range pods {
		pods[i].readyAt = math.Inf(-1)
	}
	var (
		backlog float64
		acc     windowAcc
		recent  []tuning.Window
		history []pacerv1.Decision
	)
	start, end := -tr.Warmup.Seconds(), tr.Duration.Seconds()
	for t := start; t < end; t++ {
		load := tr.Load(math.Max(t, 0))
		if t < 0 {
			load = tr.Load(0)
		}
		ready := 0
		for _, p := range pods {
			if p.readyAt <= t {
				ready++
			}
		}
		lambda := math.Max(0, load.Rate*(1+m.Noise*rng.NormFloat64()))
		if t >= 0 {
			res.PodSeconds += float64(len(pods))
		}
		conns := len(pods) * int(cur.PoolMaxConns)
		res.PeakConnections = max(res.PeakConnections, conns)
		if sc.Budget > 0 && conns > int(sc.Budget) {
			res.OverBudgetSeconds++
		}
		acc.minReady = min(acc.minReady, ready)
		if acc.n == 0 {
			acc.minReady = ready
		}
		if ready == 0 {
			acc.addDown(lambda)
		} else {
			lp := lambda / float64(ready)
			hit, entries, evicts := m.cache(float64(cur.CacheMaxEntries), lp, load.Hostile)
			dbUtil := lambda * (1 - hit) * m.DBCPUPerQuery / m.DBCores
			share := m.MaxConnections / max(len(pods), 1)
			pt := m.tick(lp, backlog/float64(ready), int(cur.MaxInFlight), int(cur.PoolMaxConns), hit, entries, evicts, load, dbUtil, share)
			backlog = pt.backlog * float64(ready)
			acc.add(pt, ready, lambda)
		}

		if math.Mod(t-start+1, iv) != 0 {
			continue
		}
		// End of an interval: a window, scoring, a decision.
		wEnd := t + 1
		// The window covers the pods ready all through it: a pod that
		// became ready during it has only one scrape in it.
		win := acc.window(epoch.Add(seconds(wEnd-iv)), epoch.Add(seconds(wEnd)), acc.minReady, cur, m)
		if t >= 0 {
			arrived := acc.arrived / acc.n
			failed := (acc.shed + acc.errors) / acc.n
			res.Windows = append(res.Windows, WindowResult{
				End: wEnd, P99: win.P99.Seconds(), Arrived: arrived, Served: acc.served / acc.n, Failed: failed,
				Pods: ready, Settings: cur,
				InObjective: win.P99.Seconds() <= objective && failed <= 0.01*arrived,
			})
		}
		acc = windowAcc{}
		in := tuning.Input{
			Now: epoch.Add(seconds(wEnd)), Tuning: sc.Tuning, MaxTotalConnections: sc.Budget,
			Current: cur, Window: win, History: history, Recent: recent, PodCPU: m.PodCores,
		}
		d := pol.Decide(in)
		recent = append([]tuning.Window{win}, recent...)
		if len(recent) > keptWindows {
			recent = recent[:keptWindows]
		}
		res.OutOfBounds += outOfBounds(sc.Tuning.Bounds, cur, d.Settings)
		if d.Settings == cur {
			continue
		}
		changes := diff(cur, d)
		history = append([]pacerv1.Decision{{Time: metav1.NewTime(in.Now), Mode: pacerv1.TuningAuto, Applied: true, Changes: changes}}, history...)
		if len(history) > pacerv1.MaxHistory {
			history = history[:pacerv1.MaxHistory]
		}
		if wEnd > 0 {
			res.Decisions = append(res.Decisions, Applied{At: wEnd, Changes: changes, Summary: d.Summary})
		}
		pods = resize(pods, int(d.Settings.Replicas), wEnd+m.PodStartup)
		cur = d.Settings
	}
	return res
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// resize adds pods that become ready at readyAt, or removes the newest
// (not yet ready first).
func resize(pods []pod, n int, readyAt float64) []pod {
	for len(pods) < n {
		pods = append(pods, pod{readyAt: readyAt})
	}
	if len(pods) > n {
		pods = pods[:n]
	}
	return pods
}

// diff lists the changes of a decision, with its reasons where it gave them.
func diff(cur pacerv1.Settings, d tuning.Decision) []pacerv1.Change {
	reasons := map[string]string{}
	for _, c := range d.Changes {
		reasons[c.Setting] = c.Reason
	}
	var out []pacerv1.Change
	add := func(name string, from, to int32) {
		if from != to {
			out = append(out, pacerv1.Change{Setting: name, From: from, To: to, Reason: reasons[name]})
		}
	}
	add(tuning.SettingReplicas, cur.Replicas, d.Settings.Replicas)
	add(tuning.SettingWorkers, cur.MaxInFlight, d.Settings.MaxInFlight)
	add(tuning.SettingPool, cur.PoolMaxConns, d.Settings.PoolMaxConns)
	add(tuning.SettingCache, cur.CacheMaxEntries, d.Settings.CacheMaxEntries)
	add("queueDepth", cur.QueueDepth, d.Settings.QueueDepth)
	add("poolMinConns", cur.PoolMinConns, d.Settings.PoolMinConns)
	add("rateLimitRPS", cur.RateLimitRPS, d.Settings.RateLimitRPS)
	add("rateLimitBurst", cur.RateLimitBurst, d.Settings.RateLimitBurst)
	return out
}

// outOfBounds counts the settings of next that left their bounds or
// changed without bounds.
func outOfBounds(b pacerv1.TuningBounds, cur, next pacerv1.Settings) int {
	n := 0
	check := func(r *pacerv1.Int32Range, from, to int32) {
		switch {
		case r == nil && from != to:
			n++
		case r != nil && from != to && (to < r.Min || to > r.Max):
			n++
		}
	}
	check(b.Replicas, cur.Replicas, next.Replicas)
	check(b.Workers, cur.MaxInFlight, next.MaxInFlight)
	check(b.PoolMaxConns, cur.PoolMaxConns, next.PoolMaxConns)
	check(b.CacheMaxEntries, cur.CacheMaxEntries, next.CacheMaxEntries)
	check(nil, cur.QueueDepth, next.QueueDepth)
	check(nil, cur.PoolMinConns, next.PoolMinConns)
	check(nil, cur.RateLimitRPS, next.RateLimitRPS)
	check(nil, cur.RateLimitBurst, next.RateLimitBurst)
	return n
}

// windowAcc sums the ticks of one window (totals across ready pods).
type windowAcc struct {
	minReady                       int
	n                              float64
	arrived, served, shed, errors  float64
	inFlight, queue, poolUsed, cpu float64 // per-pod, summed over ticks
	poolWaitW, acquires, empty     float64 // poolWait weighted by acquires
	lookups, hits, evicts, entries float64
	comps                          []component
}

func (a *windowAcc) addDown(lambda float64) {
	a.n++
	a.arrived += lambda
	a.errors += lambda
}

func (a *windowAcc) add(pt podTick, ready int, lambda float64) {
	r := float64(ready)
	a.n++
	a.arrived += lambda
	a.served += pt.served * r
	a.shed += pt.shed * r
	a.errors += pt.errors * r
	a.inFlight += pt.inFlight
	a.queue += pt.queue
	a.poolUsed += pt.poolUsed
	a.cpu += pt.cpu
	acq := pt.served * (1 - pt.hit) * r
	a.acquires += acq
	a.poolWaitW += pt.poolWait * acq
	a.empty += pt.emptyAcquires * r
	a.lookups += pt.served * r
	a.hits += pt.served * pt.hit * r
	a.evicts += pt.evicts * r
	a.entries += pt.entries
	for _, c := range pt.comps {
		c.weight *= r
		a.comps = append(a.comps, c)
	}
}

// window turns the sums into what the observer would report.
func (a *windowAcc) window(start, end time.Time, ready int, cur pacerv1.Settings, m Model) tuning.Window {
	n := math.Max(a.n, 1)
	w := tuning.Window{
		Start: start, End: end, Pods: ready, Generation: 1,
		RequestRate: (a.served + a.shed + a.errors) / n, ShedRate: a.shed / n, ErrorRate: (a.shed + a.errors) / n,
		P50:      seconds(quantile(a.comps, 0.50)),
		P95:      seconds(quantile(a.comps, 0.95)),
		P99:      seconds(quantile(a.comps, 0.99)),
		InFlight: a.inFlight / n, QueueLength: a.queue / n,
		WorkerLimit: int(cur.MaxInFlight), PoolMaxConns: int(cur.PoolMaxConns),
		PoolAcquired: a.poolUsed / n, PoolEmptyAcquireRate: a.empty / n,
		CacheLookupRate: a.lookups / n, CacheEvictionRate: a.evicts / n, CacheEntries: a.entries / n,
		CPUCores:   a.cpu / n,
		Sufficient: a.served > 0,
	}
	if a.acquires > 0 {
		w.PoolAcquireWait = seconds(a.poolWaitW / a.acquires)
	}
	if a.lookups > 0 {
		w.CacheHitRatio = a.hits / a.lookups
	}
	if cur.MaxInFlight > 0 {
		w.Utilization = w.InFlight / float64(cur.MaxInFlight)
	}
	if !w.Sufficient {
		w.Reason = "no requests served"
	}
	return w
}
