package tuning

import (
	"fmt"
	"math"
	"time"
)

// load is how busy one or more windows say the pods are: the utilization
// of the busiest resource (worker slots, or CPU when PodCPU is known),
// scaled up by the share of requests refused or timed out (work that
// arrived but was not served), times the pods.
type load struct {
	podsBusy float64 // pods' worth of full utilization, all pods
	by       string  // what decided it
	// peak is the busiest single window's podsBusy, for stableLoad.
	peak float64
}

func (p params) loadOf(w Window, W int32) load {
	pods := float64(w.Pods)
	u, by := 0.0, ""
	if W > 0 {
		u, by = w.InFlight/float64(W), fmt.Sprintf("%s of %d workers busy", num(w.InFlight), W)
	}
	if p.podCPU > 0 {
		if c := w.CPUCores / p.podCPU; c > u {
			u, by = c, fmt.Sprintf("CPU %s of %s cores", num(w.CPUCores), num(p.podCPU))
		}
	}
	// Requests refused by the rate limit (429) are policy, not capacity.
	arrived := w.RequestRate - w.RateLimitedRate
	if good := arrived - w.ErrorRate; good > 0 && w.ErrorRate > 0 {
		over := arrived / good
		u *= over
		by += fmt.Sprintf(" with %s of requests refused or failed", pct(1-1/over))
	}
	return load{podsBusy: u * pods, by: by}
}

// stableLoad averages the windows that ended within the stable window of ws[0].
func (p params) stableLoad(ws []Window, W int32) load {
	var sum, peak float64
	n := 0
	for i, w := range ws {
		if ws[0].End.Sub(w.End) >= stableWindow {
			break
		}
		if !w.Sufficient {
			continue
		}
		wl := W
		if i > 0 && w.WorkerLimit > 0 && W > 0 {
			wl = int32(w.WorkerLimit)
		}
		b := p.loadOf(w, wl).podsBusy
		sum += b
		peak = max(peak, b)
		n++
	}
	l := p.loadOf(ws[0], W)
	l.peak = l.podsBusy
	if n > 0 {
		l.podsBusy, l.peak = sum/float64(n), peak
	}
	return l
}

// replicasRec recommends replicas from ws[0] and the windows before it, as
// Knative's autoscaler does: the demand averaged over a stable window
// (60s) sizes the service at the target utilization; when the latest
// window alone (the panic window) wants at least twice the pods, or
// violates the objective and wants more, the larger figure wins and
// nothing scales down. R is the replicas in effect, W the workers per pod
// the pods ran with, poolRises whether the pool grows in the same
// decision; W is 0 when the workers rise in the same decision
// (the old limit no longer binds), and then the in-flight count is not
// used: CPU alone decides, or, without a CPU figure, replicas wait a window.
func (p params) replicasRec(ws []Window, R, W int32, poolRises bool) rec {
	w := ws[0]
	hold := func(why string) rec { return rec{to: R, reason: why} }
	if R <= 0 {
		return hold("")
	}
	if W <= 0 && p.podCPU <= 0 {
		return hold("replicas wait for a window under the new worker limit")
	}
	stable, latest := p.stableLoad(ws, W), p.loadOf(w, W)
	need, why := stable.podsBusy/p.target, latest.by
	pneed := latest.podsBusy / p.target
	util := need / float64(R)
	mode := fmt.Sprintf("stable %s", ms(stableWindow))
	// One window is noisier than the stable window's mean: unless p99 is
	// near the objective or the load rose in every window (a trend, not
	// noise), a rise on it alone needs twice the tolerance.
	riseBand := tolerance
	if !p.near(w) {
		riseBand = 2 * tolerance
	}
	if g := rising(ws); g > 0 {
		riseBand = tolerance
		// Load that rose in every window of the stable window is met
		// where it will be two intervals on, since new pods take time.
		if proj := pneed * min(1+g*2*p.interval.Seconds()/w.RequestRate, 1.5); proj > float64(R)*(1+tolerance) && proj > need {
			pneed = proj
			latest.by += fmt.Sprintf(", load rising %s req/s per second", num(g))
		}
	}
	if pneed > need && pneed > float64(R)*(1+riseBand) {
		// A rise shows in the latest window first: scale-ups follow it
		// (scale-downs only ever follow the stable window).
		need, why, util = pneed, latest.by, pneed/float64(R)
		mode = "latest"
	}
	if pneed >= panicFactor*float64(R) || (p.over(w) && pneed > float64(R)*(1+tolerance)) {
		if pneed > need {
			need, why, util = pneed, latest.by, pneed/float64(R)
		}
		mode = "panic"
		if need < float64(R) {
			return hold("in panic mode: no scale-down")
		}
	}
	if r, ok := p.beyondStarting(ws, R); ok {
		return r
	}
	// The band holds small errors, except a rise while p99 is already
	// near the objective: latency is what the tuner answers for.
	if math.Abs(util-1) <= tolerance && (util <= 1 || !p.near(w)) {
		return hold(fmt.Sprintf("utilization %s of target %s is within %s", pct(util*p.target), pct(p.target), pct(tolerance)))
	}
	if math.Abs(util-1) <= tolerance && poolRises {
		// The pool grows to end acquire waits: those, not the pods'
		// utilization, are what brought p99 near the objective.
		return hold(fmt.Sprintf("utilization %s of target %s is within %s and the pool grows: replicas wait for a window with the new pool", pct(util*p.target), pct(p.target), pct(tolerance)))
	}
	to := max(ceil32(need), 1)
	if need < float64(R) && p.calm(w) {
		to = max(min(to, ceil32(stable.peak/p.target/(1+tolerance))), 1)
	}
	if to == R {
		if R > 1 && need < float64(R) {
			// Say why a service below its target does not shrink.
			return hold(fmt.Sprintf("replicas stay at %d: utilization %s against a %s target, and %d would run at %s",
				R, pct(util*p.target), pct(p.target), R-1, pct(need*p.target/float64(R-1))))
		}
		return hold("")
	}
	if to < R && p.podCPU <= 0 {
		// Without a CPU figure the worker slots are the only measure of
		// capacity, and a limit far above what a pod carries hides how
		// busy it is. So scale-downs go no further than a per-pod rate
		// 10% above the highest one seen within the objective.
		if best := p.bestGoodRate(ws); best > 0 {
			floor := ceil32(w.RequestRate / (best * (1 + exploreRate)))
			if floor >= R {
				return hold(fmt.Sprintf("without a CPU figure, replicas go no lower than %s req/s per pod (10%% above the %s req/s per pod seen within objective) allows", num(best*(1+exploreRate)), num(best)))
			}
			to = max(to, floor)
		}
	}
	floorWhy := ""
	if to < R {
		// Repeating bursts: a count of pods that recently violated the
		// objective at the load still peaking now is too few, even if
		// the windows between the bursts say otherwise.
		if floor, failed, at := p.burstFloor(ws); floor > to {
			why := fmt.Sprintf("%d pods violated the objective at %s req/s within the last %s and that load still recurs", failed, num(at), ms(burstMemory))
			if floor > failed+1 {
				why += fmt.Sprintf("; %d served it within the objective", floor)
			}
			if floor >= R {
				return hold(fmt.Sprintf("%s: no scale-down to %d", why, to))
			}
			to, floorWhy = floor, fmt.Sprintf(" (not %d: %s)", to, why)
		}
	}
	if to > R && w.Pods < int(R) {
		return hold(fmt.Sprintf("%d of %d pods ready: waiting for the rest before scaling further", w.Pods, R))
	}
	return rec{to: to, urgent: mode == "panic" && p.over(w), reason: fmt.Sprintf("%s window: utilization %s against a %s target (latest window: %s per pod), %s (objective %s): %s%s",
		mode, pct(util*p.target), pct(p.target), why, p.p99(w), ms(p.objective), arrow(SettingReplicas, R, to), floorWhy)}
}

// beyondStarting is a rise while pods are still starting. The ready pods'
// utilization says nothing of the pods still starting; counting those as
// capacity, the tuner rises further only when the demand itself (the
// request rate at the CPU a request costs) needs more than all of them: a
// flash crowd still growing. ok is false when that is not the case.
func (p params) beyondStarting(ws []Window, R int32) (rec, bool) {
	w := ws[0]
	c := cpuPerRequest(ws[1:])
	if w.Pods >= int(R) || p.podCPU <= 0 || c <= 0 {
		return rec{}, false
	}
	arrived := w.RequestRate - w.RateLimitedRate
	rn := ceil32(arrived * c / p.podCPU / p.target)
	if rn <= R {
		return rec{}, false
	}
	return rec{to: rn, urgent: p.over(w), reason: fmt.Sprintf("%d of %d pods ready, and %s req/s at %s of CPU a request need %d pods at %s of %s cores (%s): %s",
		w.Pods, R, num(arrived), secs(c), rn, pct(p.target), num(p.podCPU), p.p99(w), arrow(SettingReplicas, R, rn))}, true
}

// burstMemory is how long a violation at a recurring load keeps the
// replicas above the pod count that failed it.
const burstMemory = time.Hour

// bestGoodRate is the highest request rate per pod of the windows that met
// the objective with no queue and nothing shed; 0 when none did.
func (p params) bestGoodRate(ws []Window) float64 {
	best := 0.0
	for _, w := range ws {
		if w.Sufficient && w.Pods > 0 && p.latencyKnown(w) && w.P99 <= p.objective && w.QueueLength < 0.5 && w.ShedRate == 0 {
			best = max(best, w.RequestRate/float64(w.Pods))
		}
	}
	return best
}

// rising returns the growth of the request rate, in requests per second
// per second, when it rose from each window to the next across the stable
// window (at least three windows) and by at least trendMin in all; 0
// otherwise. Four windows in a row rise by chance alone one time in 24:
// the minimum keeps arrival noise from passing for a trend.
func rising(ws []Window) float64 {
	n := 0
	for i := 1; i < len(ws) && ws[0].End.Sub(ws[i].End) < stableWindow; i++ {
		if !ws[i].Sufficient || ws[i-1].RequestRate <= ws[i].RequestRate {
			return 0
		}
		n = i
	}
	if n < 2 || ws[0].RequestRate < (1+trendMin)*ws[n].RequestRate {
		return 0
	}
	dt := ws[0].End.Sub(ws[n].End).Seconds()
	return (ws[0].RequestRate - ws[n].RequestRate) / dt
}

// burstFloor is the fewest pods a scale-down may leave while a load that
// failed recurs. A violation within burstMemory at a request rate at least
// 90% of the highest one in the scale-down window says fewer pods than
// failed (the most seen failing it) are too few; the floor is then the
// fewest pods above those seen serving that load (90% of its rate) within
// the objective, or
// one more than failed when none was. Stepping down one pod past each
// failure cost a violating burst per step. It returns 0 when no load
// failed, the pods that failed it, and its rate.
func (p params) burstFloor(ws []Window) (floor, failed int32, at float64) {
	peak := 0.0
	for _, w := range ws {
		if ws[0].End.Sub(w.End) < p.down {
			peak = max(peak, w.RequestRate)
		}
	}
	for _, w := range ws {
		if ws[0].End.Sub(w.End) <= burstMemory && w.Sufficient && p.over(w) && w.RequestRate >= 0.9*peak && int32(w.Pods) > failed {
			failed, at = int32(w.Pods), w.RequestRate
		}
	}
	if failed == 0 {
		return 0, 0, 0
	}
	for _, w := range ws {
		if n := int32(w.Pods); w.Sufficient && n > failed && (floor == 0 || n < floor) &&
			w.RequestRate >= 0.9*at && p.latencyKnown(w) && !p.over(w) && w.ShedRate == 0 {
			floor = n
		}
	}
	if floor == 0 {
		floor = failed + 1
	}
	return floor, failed, at
}
