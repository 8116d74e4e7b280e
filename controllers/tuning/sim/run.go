package sim

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// epoch is simulated time zero (the start of the scored part).
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// WindowResult is one scored window.
type WindowResult struct {
	End float64 // seconds into the scored part
	// P99 is what the operator measured (from the histogram buckets),
	// in seconds, for policies that read it (else 0); InObjective is
	// judged on the true latency distribution.
	P99         float64
	Arrived     float64 // requests per second
	Served      float64
	Failed      float64 // shed, timed out or refused a connection, per second
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
	// RefusedSeconds counts seconds in which PostgreSQL refused a
	// connection (max_connections reached), RefusedRequests the requests
	// that failed for it; FirstRefusal is when it first happened (seconds
	// into the run, warm-up negative; NaN when never).
	RefusedSeconds  int
	RefusedRequests float64
	FirstRefusal    float64
	// OutOfBounds counts decisions that chose a tuned setting outside its
	// bounds, or changed a setting without bounds.
	OutOfBounds int
	// Stopped is true when the run was cut short (see run's stopAfter).
	Stopped bool
}

// Violations counts the violating windows.
func (r Result) Violations() int {
	n := 0
	for _, w := range r.Windows {
		if !w.InObjective {
			n++
		}
	}
	return n
}

type pod struct {
	readyAt float64
	cfg     pacerv1.Settings // the config the pod runs
	gen     int
	// next is the newest config not yet on the pod, due at nextAt.
	next     pacerv1.Settings
	nextGen  int
	nextAt   float64
	genSince float64 // when the pod last switched config
	conns    int     // database connections it holds
	busyAt   float64 // the last second it wanted every connection it holds
	backlog  float64
	demand   float64 // connections its queries kept busy last second (Erlangs)
	group    int     // its group this second
	goneAt   float64 // when a terminating pod is gone
}

// observer is a policy that observes more often than the interval (the
// tuner's panic horizon); the others see one window per interval.
type observer interface{ ObservePeriod(Scenario) time.Duration }

// latencyReader is a policy that reads the windows' latency quantiles;
// for the others the simulator spares itself the histograms.
type latencyReader interface{ ReadsLatency() bool }

// Run simulates one policy on one trace.
func Run(sc Scenario, tr Trace, pol Policy) Result { return run(sc, tr, pol, -1) }

// streams derives a run's random streams from the seed and the trace, so
// every policy sees the same arrivals on the same seed.
func streams(seed uint64, trace string) (arrivals, sampling, config *rand.Rand) {
	h := fnv.New64a()
	h.Write([]byte(trace))
	k := h.Sum64()
	return rand.New(rand.NewPCG(seed, k)), rand.New(rand.NewPCG(seed, k+1)), rand.New(rand.NewPCG(seed, k+2))
}

// run simulates; with stopAfter ≥ 0 it stops once more than stopAfter
// windows violated (a search needs no more).
func run(sc Scenario, tr Trace, pol Policy, stopAfter int) Result {
	tr = tr.withDefaults()
	sc = tr.scenario(sc)
	m := sc.Model
	arrivals, sampling, configs := streams(sc.Seed, tr.Name)
	iv := sc.interval().Seconds()
	ov := iv // how often the policy observes
	if o, ok := pol.(observer); ok {
		ov = math.Min(iv, o.ObservePeriod(sc).Seconds())
	}
	objective := sc.Tuning.Objective.LatencyP99.Seconds()

	res := Result{Trace: tr.Name, Policy: pol.Name(), Budget: int(sc.Budget), FirstRefusal: math.NaN()}
	cur, ctl := pol.Start(sc)
	lr, measure := pol.(latencyReader)
	measure = measure && lr.ReadsLatency()
	gen := 1
	start, end := -tr.Warmup.Seconds(), tr.Duration.Seconds()
	pods := make([]pod, cur.Replicas)
	for i := range pods {
		pods[i] = pod{readyAt: math.Inf(-1), cfg: cur, gen: gen, nextAt: math.Inf(1), genSince: math.Inf(-1), busyAt: start}
	}
	var (
		acc windowAcc // the scored window (one interval)
		// obs is the policy's window when it observes more often than the
		// interval; else the scored window is the policy's.
		obs       windowAcc
		accs      = []*windowAcc{&acc}
		groups    []group
		violating int
		// terminating are removed pods that still hold their connections.
		terminating []pod
		refusing    []bool
		caches      = map[cacheKey]cacheState{}
	)
	if ov < iv {
		accs = append(accs, &obs)
	}
	for t := start; t < end; t++ {
		load := tr.Load(math.Max(t, 0))
		lambda := math.Max(0, load.Rate*(1+m.Noise*arrivals.NormFloat64()))
		if t >= 0 {
			res.PodSeconds += float64(len(pods))
		}
		terminating = drained(terminating, t)
		conf := worstCase(pods, terminating)
		res.PeakConnections = max(res.PeakConnections, conf)
		if sc.Budget > 0 && conf > int(sc.Budget) {
			res.OverBudgetSeconds++
		}

		ready := 0
		for i := range pods {
			p := &pods[i]
			if p.nextAt <= t {
				p.cfg, p.gen, p.genSince, p.nextAt = p.next, p.nextGen, t, math.Inf(1)
			}
			if p.readyAt > t {
				continue
			}
			ready++
			if p.gen != gen {
				for _, a := range accs {
					a.oldGen = true
				}
			}
		}
		refusing = connect(refusing, pods, terminating, t, m)
		for _, a := range accs {
			if a.n == 0 {
				a.minReady = ready
			}
			a.minReady = min(a.minReady, ready)
			a.n++
		}
		concurrency, cpu := 0.0, 0.0
		if ready == 0 {
			for _, a := range accs {
				a.addDown(lambda)
			}
		} else {
			lp := lambda / float64(ready)
			groups = groupPods(groups[:0], pods, refusing, t)
			dbUtil := 0.0
			for i := range groups {
				g := &groups[i]
				g.hit, g.entries, g.evicts = cached(caches, m, g.key.cache, lp, load.Hostile)
				dbUtil += float64(g.n) * lp * (1 - g.hit) * m.DBCPUPerQuery * math.Max(load.DBSlow, 1) / m.DBCores
			}
			refused := 0.0
			for i := range groups {
				g := &groups[i]
				g.pt = m.tick(lp, g.backlog/float64(g.n), int(g.key.workers), int(g.key.peff), g.key.refusing,
					g.hit, g.entries, g.evicts, load, dbUtil)
				for _, a := range accs {
					a.add(g.pt, g.n, lp)
				}
				refused += g.pt.refused * float64(g.n)
				concurrency += (g.pt.inFlight + g.pt.queue) * float64(g.n)
				cpu += g.pt.cpu * float64(g.n) / float64(ready)
			}
			for i := range pods {
				if pods[i].readyAt <= t {
					g := groups[pods[i].group]
					pods[i].backlog, pods[i].demand = g.pt.backlog, g.pt.connDemand
				}
			}
			if refused > 1e-9 {
				res.RefusedSeconds++
				res.RefusedRequests += refused
				if math.IsNaN(res.FirstRefusal) {
					res.FirstRefusal = t
				}
			}
		}

		step := Step{Now: epoch.Add(seconds(t + 1)), Current: cur, Ready: ready, Concurrency: concurrency, CPU: cpu, Terminating: len(terminating)}
		wEnd := t + 1
		if math.Mod(wEnd-start, iv) == 0 {
			// End of an interval: a window, scored, and shown to the policy.
			win, inObjective := acc.window(epoch.Add(seconds(wEnd-iv)), epoch.Add(seconds(wEnd)), pods, cur, objective, measure, sampling)
			if t >= 0 {
				arrived, failed := acc.arrived/acc.n, (acc.shed+acc.errors)/acc.n
				ok := inObjective && failed <= 0.01*arrived
				res.Windows = append(res.Windows, WindowResult{
					End: wEnd, P99: win.P99.Seconds(), Arrived: arrived, Served: acc.served / acc.n, Failed: failed,
					Pods: ready, Settings: cur, InObjective: ok,
				})
				if !ok {
					violating++
					if stopAfter >= 0 && violating > stopAfter {
						res.Stopped = true
						return res
					}
				}
			}
			acc = windowAcc{comps: acc.comps[:0]}
			if ov == iv {
				step.Window = &win
			}
		}
		if ov < iv && ends(wEnd-start, ov) {
			win, _ := obs.window(epoch.Add(seconds(wEnd-obs.n)), epoch.Add(seconds(wEnd)), pods, cur, objective, measure, sampling)
			obs = windowAcc{comps: obs.comps[:0]}
			step.Window = &win
		}
		d := ctl.Step(step)
		res.OutOfBounds += outOfBounds(sc.Tuning.Bounds, cur, d.Settings)
		if d.Settings == cur {
			continue
		}
		if wEnd > 0 {
			res.Decisions = append(res.Decisions, Applied{At: wEnd, Changes: diff(cur, d), Summary: d.Summary})
		}
		next := d.Settings
		if podConfig(next) != podConfig(cur) {
			// A new ConfigMap: each running pod picks it up on its own sync.
			gen++
			for i := range pods {
				p := &pods[i]
				if math.IsInf(p.nextAt, 1) {
					p.nextAt = wEnd + m.ConfigDelay + m.ConfigSpread*configs.Float64()
				}
				p.next, p.nextGen = next, gen
			}
		}
		for len(pods) < int(next.Replicas) {
			pods = append(pods, pod{readyAt: wEnd + m.PodStartup, cfg: next, gen: gen, nextAt: math.Inf(1), genSince: wEnd, busyAt: wEnd})
		}
		for _, p := range pods[min(int(next.Replicas), len(pods)):] {
			if p.readyAt <= wEnd && p.conns > 0 {
				p.goneAt = wEnd + m.TerminationGrace
				terminating = append(terminating, p)
			}
		}
		pods = pods[:next.Replicas] // the newest (not yet ready first) go
		cur = next
	}
	return res
}

// ends says whether a window of period seconds ends in the second that
// ends at t (seconds since the start): a period that is not a whole
// number of seconds ends in the second it falls in.
func ends(t, period float64) bool {
	return math.Floor(t/period+1e-9) > math.Floor((t-1)/period+1e-9)
}

// drained drops the terminating pods that are gone by t.
func drained(ps []pod, t float64) []pod {
	kept := ps[:0]
	for _, p := range ps {
		if p.goneAt > t {
			kept = append(kept, p)
		}
	}
	return kept
}

// worstCase is every connection the pods may open now: each pod's request
// pool at the larger of the config it runs and the one on its way, plus
// its health pool, terminating pods included.
func worstCase(pods, terminating []pod) int {
	n := int64(0)
	for _, p := range pods {
		pool := p.cfg.PoolMaxConns
		if !math.IsInf(p.nextAt, 1) {
			pool = max(pool, p.next.PoolMaxConns)
		}
		n += tuning.PodConnections(pool)
	}
	for _, p := range terminating {
		n += tuning.PodConnections(p.cfg.PoolMaxConns)
	}
	return int(n)
}

// podConfig is what a pod reads from its config: everything but replicas.
func podConfig(s pacerv1.Settings) pacerv1.Settings {
	s.Replicas = 0
	return s
}

// connect sizes every ready pod's connections for this second, as
// pgxpool does: a pool opens connections as its queries need them, up to
// poolMaxConns (a high-water mark of the busy ones, and never under
// poolMinConns), closes the ones it has not needed for ConnIdleTime, and
// closes the excess at once when poolMaxConns falls. PostgreSQL grants new
// connections only while fewer than max_connections are open; refusing[i]
// is true when pod i wanted more and was refused.
func connect(refusing []bool, pods, terminating []pod, t float64, m Model) []bool {
	want := func(p *pod) int {
		d := p.demand
		hw := int(math.Ceil(d + 2*math.Sqrt(d) + 1))
		return int(min(p.cfg.PoolMaxConns, max(p.cfg.PoolMinConns, int32(hw))))
	}
	open := 0
	for _, p := range terminating {
		open += p.conns + tuning.HealthPoolConns
	}
	for i := range pods {
		p := &pods[i]
		if p.readyAt > t {
			continue
		}
		open += tuning.HealthPoolConns // the /readyz pool's connection
		w := want(p)
		p.conns = min(p.conns, int(p.cfg.PoolMaxConns))
		if w >= p.conns {
			p.busyAt = t
		} else if t-p.busyAt >= m.ConnIdleTime {
			p.conns = w
		}
		open += p.conns
	}
	refusing = append(refusing[:0], make([]bool, len(pods))...)
	for i := range pods {
		p := &pods[i]
		if p.readyAt > t {
			continue
		}
		if w := want(p); w > p.conns {
			grant := max(0, min(w-p.conns, m.MaxConnections-open))
			p.conns += grant
			open += grant
			refusing[i] = w > p.conns
		}
	}
	return refusing
}

type cacheKey struct {
	entries int32
	rate    int32 // lookups per second per pod, in steps of 0.5%
	hostile bool
}

type cacheState struct{ hit, entries, evicts float64 }

// cached is m.cache with the rate rounded to 0.5%, remembered for the
// run: the bisection is the costliest part of a second.
func cached(memo map[cacheKey]cacheState, m Model, entries int32, rate float64, hostile bool) (hit, held, evicts float64) {
	k := cacheKey{entries: entries, hostile: hostile}
	if rate > 0 {
		k.rate = int32(math.Round(math.Log(rate) / math.Log1p(0.005)))
	}
	if c, ok := memo[k]; ok {
		return c.hit, c.entries, c.evicts
	}
	r := 0.0
	if rate > 0 {
		r = math.Exp(float64(k.rate) * math.Log1p(0.005))
	}
	hit, held, evicts = m.cache(float64(entries), r, hostile)
	memo[k] = cacheState{hit, held, evicts}
	return hit, held, evicts
}

// group is the ready pods that behave alike this second.
type group struct {
	key                  groupKey
	n                    int
	backlog              float64
	hit, entries, evicts float64
	pt                   podTick
}

type groupKey struct {
	workers, cache int32
	peff           int32 // connections it may use
	refusing       bool
}

// groupPods sorts the ready pods into groups of equal settings and
// connections, so a second costs one tick per group, not per pod.
func groupPods(gs []group, pods []pod, refusing []bool, t float64) []group {
	for i := range pods {
		p := &pods[i]
		if p.readyAt > t {
			continue
		}
		k := groupKey{workers: p.cfg.MaxInFlight, cache: p.cfg.CacheMaxEntries, peff: p.cfg.PoolMaxConns}
		if refusing[i] {
			k.peff, k.refusing = int32(p.conns), true
		}
		j := 0
		for j < len(gs) && gs[j].key != k {
			j++
		}
		if j == len(gs) {
			gs = append(gs, group{key: k})
		}
		gs[j].n++
		gs[j].backlog += p.backlog
		p.group = j
	}
	return gs
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

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
	oldGen                         bool    // a ready pod ran an older config at some point
	n                              float64 // seconds
	podTicks                       float64 // pod-seconds
	arrived, served, shed, errors  float64
	inFlight, queue, poolUsed, cpu float64 // per-pod means, summed over ticks
	poolWaitW, acquires, empty     float64 // poolWait weighted by acquires
	lookups, hits, evicts, entries float64
	comps                          []component
}

func (a *windowAcc) addDown(lambda float64) {
	a.arrived += lambda
	a.errors += lambda
}

// add sums one group of n pods' tick; several groups may make one second.
func (a *windowAcc) add(pt podTick, n int, lp float64) {
	r := float64(n)
	a.arrived += lp * r
	a.served += pt.served * r
	a.shed += pt.shed * r
	a.errors += pt.errors * r
	a.inFlight += pt.inFlight * r
	a.queue += pt.queue * r
	a.poolUsed += pt.poolUsed * r
	a.cpu += pt.cpu * r
	a.podTicks += r
	acq := pt.served * (1 - pt.hit) * r
	a.acquires += acq
	a.poolWaitW += pt.poolWait * acq
	a.empty += pt.emptyAcquires * r
	a.lookups += pt.served * r
	a.hits += pt.served * pt.hit * r
	a.evicts += pt.evicts * r
	a.entries += pt.entries * r
	for _, c := range pt.comps {
		if c.weight > 0 {
			c.weight *= r
			a.comps = append(a.comps, c)
		}
	}
}

// window turns the sums into what the observer would report, with the
// quantiles read from sampled histogram buckets; inObjective says whether
// the true p99 (the mixture's) met the objective.
func (a *windowAcc) window(start, end time.Time, pods []pod, cur pacerv1.Settings, objective float64, measure bool, rng *rand.Rand) (tuning.Window, bool) {
	n := math.Max(a.n, 1)
	pt := math.Max(a.podTicks, 1) // pod-seconds: per-pod means divide by it
	w := tuning.Window{
		Start: start, End: end, Pods: a.minReady, Generation: 1,
		RequestRate: (a.served + a.shed + a.errors) / n, ShedRate: a.shed / n, ErrorRate: (a.shed + a.errors) / n,
		InFlight: a.inFlight / pt, QueueLength: a.queue / pt,
		WorkerLimit: int(cur.MaxInFlight), PoolMaxConns: int(cur.PoolMaxConns),
		PoolAcquired: a.poolUsed / pt, PoolEmptyAcquireRate: a.empty / n,
		CacheLookupRate: a.lookups / n, CacheEvictionRate: a.evicts / n, CacheEntries: a.entries / pt,
		CPUCores:   a.cpu / pt,
		Sufficient: true,
	}
	for _, p := range pods {
		if p.readyAt <= start.Sub(epoch).Seconds() && p.genSince > start.Sub(epoch).Seconds() {
			a.oldGen = true
		}
	}
	// As the observer: the pods with a scrape at each end of the window,
	// by the pool each ran at its end.
	w.Pools = map[int32]int32{}
	for _, p := range pods {
		if p.readyAt <= start.Sub(epoch).Seconds() {
			w.Pools[p.cfg.PoolMaxConns]++
		}
	}
	for _, p := range pods {
		if p.readyAt <= end.Sub(epoch).Seconds() && p.cfg != podConfigOf(cur, p) {
			w.WorkerLimit, w.PoolMaxConns = int(p.cfg.MaxInFlight), int(p.cfg.PoolMaxConns)
		}
	}
	if measure {
		cum := sampleHistogram(a.comps, int(math.Round(a.served+a.shed+a.errors)), rng)
		p50, _ := histogramQuantile(0.50, cum)
		p95, _ := histogramQuantile(0.95, cum)
		p99, _ := histogramQuantile(0.99, cum) // 0 without requests: no latency data
		w.P50, w.P95, w.P99 = seconds(p50), seconds(p95), seconds(p99)
	}
	newlyReady := false
	for _, p := range pods {
		if r := p.readyAt; r > start.Sub(epoch).Seconds() && r <= end.Sub(epoch).Seconds() {
			newlyReady = true
		}
	}
	switch {
	case a.minReady == 0:
		w.Sufficient, w.Reason = false, "no ready pods"
	case newlyReady:
		// As the observer: a pod's first scrape has no earlier one to take
		// rates from, so the window does not cover every ready pod.
		w.Sufficient, w.Reason = false, "a pod became ready during the window"
	case a.oldGen:
		w.Sufficient, w.Reason = false, "pods on an older config generation"
	}
	if a.acquires > 0 {
		w.PoolAcquireWait = seconds(a.poolWaitW / a.acquires)
	}
	if a.lookups > 0 {
		w.CacheHitRatio = a.hits / a.lookups
	}
	if w.WorkerLimit > 0 {
		w.Utilization = w.InFlight / float64(w.WorkerLimit)
	}
	return w, len(a.comps) == 0 || cdf(a.comps, objective) >= 0.99
}

// podConfigOf is cur as pod p should run it (replicas aside).
func podConfigOf(cur pacerv1.Settings, p pod) pacerv1.Settings {
	cur.Replicas = p.cfg.Replicas
	return cur
}
