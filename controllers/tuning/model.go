package tuning

import (
	"fmt"
	"math"
	"slices"
	"time"
)

// model is what the recent windows say about the demand and about one pod:
// the costs of a request (CPU, database) and what a pod can carry. It is
// fitted afresh every decision from the windows the loop keeps; nothing in
// it outlives the windows it came from.
type model struct {
	// Demand, all pods, in requests per second: the latest window's, the
	// mean over the stable window, the highest window within the
	// scale-down window, and a significant rise's slope (per second; 0
	// when the load is not rising beyond its noise).
	latest, stable, peak, trend float64
	// noise is the relative standard error of stable.
	noise float64

	// cpu is the CPU time a request costs (core-seconds), and base the
	// CPU a pod uses whatever its load (cores: runtime, scrapes, probes);
	// a pod at x req/s uses base + x·cpu cores. cpu is 0 when no window
	// had both a CPU figure and completed requests; base is 0 unless the
	// windows span loads far enough apart to tell the two apart.
	cpu, base float64
	// ownLeast is the least in-service time of a request outside the
	// database seen within the knee memory: its CPU time and whatever
	// else it waits on when nothing queues. How far a window's is above it
	// says how much requests queued for the CPU.
	ownLeast float64
	// spread is the relative error of the CPU fit across the fitted
	// windows (the RMS of residual / fitted): how uncertain it is.
	spread float64
	// miss is the share of requests that query the database and query the
	// time a query holds a connection (seconds), both from the latest
	// window when it has them: they change at once when the cache or the
	// database does.
	miss, query float64

	// cores is what a pod's CPU can do: its limit, or, without one, an
	// estimate from the most CPU it used and whether its CPU queued then.
	cores     float64
	coresFrom string

	// cpuTarget and poolTarget are the utilizations the plan keeps the CPU
	// and the pool under: the spec's target, lowered by recent windows
	// that missed the objective while that resource queued below it.
	cpuTarget, poolTarget float64
	targetWhy             string

	// carries memoizes poolCarries for this decision, by pool size.
	carries map[int32]float64
}

// fit fits the model to ws, newest first (ws[0] is the latest window).
func (p params) fit(ws []Window) model {
	w := ws[0]
	m := model{latest: arrived(w), cpuTarget: p.target, poolTarget: p.target, carries: map[int32]float64{}}
	m.stable, m.noise = p.stableDemand(ws)
	m.peak = p.peakDemand(ws)
	m.trend = p.trend(ws)
	m.fitCosts(ws)
	m.ownLeast = ownLeast(ws)
	m.cores, m.coresFrom = p.podCores(ws, m.ownLeast, m.cpu)
	p.learnTargets(ws, &m)
	return m
}

// age is how long before the latest window w ended.
func age(ws []Window, w Window) time.Duration { return ws[0].End.Sub(w.End) }

// within lists the trusted windows that ended within d of the latest one
// (the latest always included).
func within(ws []Window, d time.Duration) []Window {
	out := []Window{ws[0]}
	for _, w := range ws[1:] {
		if age(ws, w) < d && w.Sufficient {
			out = append(out, w)
		}
	}
	return out
}

// stableDemand is the mean demand over the stable window (or one interval
// when that is longer), weighted by each window's length, and its
// relative standard error.
func (p params) stableDemand(ws []Window) (mean, noise float64) {
	var sum, sq, span float64
	in := within(ws, max(stableWindow, p.interval))
	for _, w := range in {
		d := max(w.End.Sub(w.Start).Seconds(), 1)
		sum += arrived(w) * d
		sq += arrived(w) * arrived(w) * d
		span += d
	}
	mean = sum / span
	if len(in) > 1 && mean > 0 {
		sd := math.Sqrt(max(sq/span-mean*mean, 0))
		noise = sd / mean / math.Sqrt(float64(len(in)))
	}
	return mean, noise
}

// peakDemand is the highest window's demand within the scale-down window:
// a cut must carry the busiest load it has seen there.
func (p params) peakDemand(ws []Window) float64 {
	peak := 0.0
	for _, w := range within(ws, max(p.down, p.interval)) {
		peak = max(peak, arrived(w))
	}
	return peak
}

// trend is the slope of the demand over the trend window by least
// squares, in requests per second per second, when it rises by more than
// its standard error allows by chance; 0 otherwise.
func (p params) trend(ws []Window) float64 {
	in := within(ws, max(trendWindow, 4*p.interval))
	n := float64(len(in))
	var st, sy float64
	for _, w := range in {
		st += -age(ws, w).Seconds()
		sy += arrived(w)
	}
	mt, my := st/n, sy/n
	var stt, sty float64
	for _, w := range in {
		t := -age(ws, w).Seconds() - mt
		stt += t * t
		sty += t * (arrived(w) - my)
	}
	if stt <= 0 {
		return 0
	}
	slope := sty / stt
	var sse float64
	for _, w := range in {
		t := -age(ws, w).Seconds() - mt
		r := arrived(w) - my - slope*t
		sse += r * r
	}
	se := math.Sqrt(sse / (n - 2) / stt)
	// A step also fits a significant slope; a trend rose in each of its
	// last windows.
	if n < 4 {
		return 0
	}
	// A gap (windows the observer could not trust, as while a config
	// rolls out) hides what happened in it.
	contiguous := age(ws, in[2]) <= 2*p.interval+p.interval/2
	if !contiguous || slope <= 0 || slope < trendSignificance*se || arrived(in[0]) <= arrived(in[1]) || arrived(in[1]) <= arrived(in[2]) {
		return 0
	}
	// A step the windows straddle fits a slope too, and noise can make its
	// last windows rise: a rise is a trend only when a line fits the
	// windows better than one level before and one after a break does.
	if stepFits(in, sse) {
		return 0
	}
	return slope
}

// stepFits says whether two levels, one on each side of some break,
// leave less squared error in the windows' demand than lineSSE, a line's.
func stepFits(in []Window, lineSSE float64) bool {
	for k := 1; k < len(in); k++ {
		if levelSSE(in[:k])+levelSSE(in[k:]) < lineSSE {
			return true
		}
	}
	return false
}

// levelSSE is the squared error of the windows' demand about its mean.
func levelSSE(ws []Window) float64 {
	var sum, sq float64
	for _, w := range ws {
		sum += arrived(w)
	}
	mean := sum / float64(len(ws))
	for _, w := range ws {
		sq += (arrived(w) - mean) * (arrived(w) - mean)
	}
	return sq
}

// fitCosts fits a pod's CPU (recency-weighted over the fit window), the
// miss ratio and the query time.
func (m *model) fitCosts(ws []Window) {
	var qw, qs float64
	var pts []cpuPoint
	for _, w := range within(ws, fitWindow) {
		k := math.Exp(-age(ws, w).Seconds() / fitDecay.Seconds())
		if x := perPod(completed(w), w); x > 0 && w.CPUCores > 0 {
			pts = append(pts, cpuPoint{x: x, y: w.CPUCores, k: k})
		}
		if q := queryTime(w); q > 0 {
			qw, qs = qw+k, qs+k*q
		}
	}
	m.cpu, m.base, m.spread = fitCPU(pts)
	m.miss = missRatio(ws[0])
	m.query = queryTime(ws[0])
	if m.query == 0 && qw > 0 {
		m.query = qs / qw
	}
}

// cpuPoint is one window's CPU: x req/s per pod used y cores; k weighs it.
type cpuPoint struct{ x, y, k float64 }

// fitCPU fits y = base + x·cpu by weighted least squares when the loads
// span far enough apart (relative spread over cpuLoadSpread) and the fit
// is physical (cpu > 0, base ≥ 0, under every window's CPU); else cost
// is proportional (base 0, cpu the weighted mean of y/x). A fixed part
// read as a per-request cost makes a request look dearer at low load
// than at high load, and the plan then both overspends at low load and
// reads the difference as uncertainty. spread is the weighted RMS of the
// relative residuals.
func fitCPU(pts []cpuPoint) (cpu, base, spread float64) {
	var sw, sx, sy, sr float64
	least := math.Inf(1) // the least CPU a window used: base stays under it
	for _, p := range pts {
		sw, sx, sy, sr = sw+p.k, sx+p.k*p.x, sy+p.k*p.y, sr+p.k*p.y/p.x
		least = min(least, p.y)
	}
	if sw <= 0 {
		return 0, 0, 0
	}
	cpu = sr / sw
	mx, my := sx/sw, sy/sw
	var sxx, sxy float64
	for _, p := range pts {
		sxx += p.k * (p.x - mx) * (p.x - mx)
		sxy += p.k * (p.x - mx) * (p.y - my)
	}
	if len(pts) >= 3 && math.Sqrt(sxx/sw) >= cpuLoadSpread*mx {
		slope := sxy / sxx
		b := my - slope*mx
		if slope > 0 && b >= 0 && b < least {
			cpu, base = slope, b
		}
	}
	var se float64
	for _, p := range pts {
		fit := base + p.x*cpu
		se += p.k * (p.y/fit - 1) * (p.y/fit - 1)
	}
	return cpu, base, math.Sqrt(se / sw)
}

// cpuAt is the cores a pod uses at x req/s.
func (m model) cpuAt(x float64) float64 { return m.base + x*m.cpu }

// podRate is the req/s a pod carries with its CPU at utilization u (0
// when its fixed part alone is over it, or the CPU model is unknown).
func (m model) podRate(u float64) float64 {
	if m.cpu <= 0 || m.cores <= 0 {
		return 0
	}
	return max(u*m.cores-m.base, 0) / m.cpu
}

// ownTime is a window's in-service time outside the database: the CPU
// time of a request and its other waits; 0 when unknown.
func ownTime(w Window) float64 {
	return max(inServiceTime(w)-missRatio(w)*(queryTime(w)+w.PoolAcquireWait.Seconds()), 0)
}

// ownLeast is the least ownTime of the windows within the knee memory.
func ownLeast(ws []Window) float64 {
	least := 0.0
	for _, w := range within(ws, knee) {
		if t := ownTime(w); t > 0 && (least == 0 || t < least) {
			least = t
		}
	}
	return least
}

// cpuInflation is a window's ownTime over the least seen: 1 when requests
// never wait for the CPU; 0 when unknown.
func cpuInflation(w Window, least float64) float64 {
	if least <= 0 {
		return 0
	}
	return ownTime(w) / least
}

// cpuQueued says whether a window's requests waited for the CPU.
func cpuQueued(w Window, least float64) bool {
	return cpuInflation(w, least) >= saturatedInflation
}

// cpuWaited says whether a window's requests spent as long outside the
// database as saturatedInflation times the CPU they use (cpu seconds per
// request): they waited for the CPU. True when cpu is unknown, to be safe.
func cpuWaited(w Window, cpu float64) bool {
	return cpu <= 0 || ownTime(w) >= saturatedInflation*cpu
}

// busyAt is how busy a CPU whose requests take f times their least CPU
// time is, by M/M/2's inflation 1/(1−ρ²): 71% at 2×, 87% at 4×. Fewer
// cores would mean less busy, more cores busier; a pod whose requests also
// queue for a worker slot is taken as saturated.
func busyAt(w Window, f float64) float64 {
	if queued(w) {
		return 1
	}
	return math.Sqrt(max(1-1/f, 0))
}

// podCores is a pod's CPU capacity: its limit when it has one. Without
// one, it is estimated from the windows within the knee memory: at least
// the most CPU a pod used, and at most what each window whose CPU queued
// says from how much it queued (the least of those, to be safe); a pod
// never seen saturated is assumed to carry at most 1/unprovenBusy times
// its busiest load, and the estimate tightens once it is. cpu is the
// fitted CPU time per request (0 when unknown).
func (p params) podCores(ws []Window, least, cpu float64) (float64, string) {
	if p.podCPU > 0 {
		return p.podCPU, "the CPU limit"
	}
	var used, bound float64
	for _, w := range within(ws, knee) {
		used = max(used, w.CPUCores)
		if w.CPUCores <= 0 {
			continue
		}
		busy := 0.0
		if f := cpuInflation(w, least); f >= saturatedInflation {
			busy = busyAt(w, f)
		}
		if p.latencyKnown(w) && p.near(w) && cpuWaited(w, cpu) {
			// p99 at the objective and requests waiting for the CPU: the
			// pod is at its knee, however little its in-service time rose
			// (it may have been there all along). A p99 the database or
			// the pool makes says nothing of the CPU.
			busy = max(busy, cpuSaturated)
		}
		if k := w.CPUCores / busy; busy > 0 && (bound == 0 || k < bound) {
			bound = k
		}
	}
	switch {
	case bound > 0:
		return max(bound, used), fmt.Sprintf("no CPU limit: estimated from the windows at the knee (the CPU queueing, or p99 near the objective while requests wait for it), %s cores at most used", num(used))
	case used > 0:
		return used / unprovenBusy, fmt.Sprintf("no CPU limit and never seen saturated: at most %g× the %s cores used", 1/unprovenBusy, num(used))
	}
	return 0, "no CPU figure"
}

// learnTargets lowers the CPU and pool targets for what recent windows
// that missed the objective say: a window that missed it while the CPU
// (or the pool) queued at a mean utilization under the target shows a load
// burstier than its mean. The lowered target relaxes back to the spec's
// over violationMemory.
func (p params) learnTargets(ws []Window, m *model) {
	limit := p.poolWaitLimit().Seconds()
	// One violation may be a load change caught at a window's end; only
	// a pattern that recurs (two windows or more) says the load is bursty.
	// The target is then the most lenient that any of them allows.
	var cpuSeen, poolSeen []float64
	cpuWhy := ""
	for _, w := range within(ws, violationMemory) {
		if !p.latencyKnown(w) || !p.over(w) {
			continue
		}
		relax := float64(age(ws, w)) / float64(violationMemory)
		lower := func(use float64) float64 {
			t := max(minTarget, use*violationBackoff)
			return t + (p.target-t)*relax
		}
		poolWaited := w.PoolAcquireWait.Seconds() > limit
		poolFull := w.PoolMaxConns > 0 && full(w.PoolAcquired, float64(w.PoolMaxConns))
		if m.cores > 0 && (cpuQueued(w, m.ownLeast) || (queued(w) && !poolFull)) {
			if use := w.CPUCores / m.cores; use < p.target {
				cpuSeen = append(cpuSeen, lower(use))
				if cpuWhy == "" {
					cpuWhy = fmt.Sprintf("the latest %s ago, %s with the CPU %s busy", ms(age(ws, w)), p.p99(w), pct(use))
				}
			}
		}
		if poolWaited && w.PoolMaxConns > 0 {
			if use := w.PoolAcquired / float64(w.PoolMaxConns); use < p.target {
				poolSeen = append(poolSeen, lower(use))
			}
		}
	}
	if len(cpuSeen) >= 2 {
		m.cpuTarget = slices.Max(cpuSeen)
		m.targetWhy = fmt.Sprintf("CPU target %s: %d windows of the last %s missed the objective with the CPU queueing under the target (%s)",
			pct(m.cpuTarget), len(cpuSeen), ms(violationMemory), cpuWhy)
	}
	if len(poolSeen) >= 2 {
		m.poolTarget = slices.Max(poolSeen)
	}
}

// describe says what the model says, for reasons.
func (m model) describe() string {
	s := fmt.Sprintf("%s req/s arriving (stable %s", num(m.latest), num(m.stable))
	if m.trend > 0 {
		s += fmt.Sprintf(", rising %s req/s per second", num(m.trend))
	}
	s += ")"
	if m.cpu > 0 {
		s += fmt.Sprintf(", %s CPU per request", secs(m.cpu))
		if m.base >= negligibleCores {
			s += fmt.Sprintf(" plus %s cores a pod uses at any load", num(m.base))
		}
	}
	if m.cores > 0 {
		s += fmt.Sprintf(" on %s cores (%s)", num(m.cores), m.coresFrom)
	}
	if m.query > 0 && m.miss >= 0.005 {
		s += fmt.Sprintf(", %s of requests query for %s", pct(m.miss), secs(m.query))
	}
	if m.targetWhy != "" {
		s += "; " + m.targetWhy
	}
	return s
}
