package tuning

import "fmt"

// serviceTime is the mean time a request holds a worker slot, in seconds,
// by Little's law (in flight = rate × time); 0 when unknown.
func serviceTime(w Window) float64 {
	admitted := w.RequestRate - w.ShedRate - w.RateLimitedRate
	if w.Pods <= 0 || admitted <= 0 || w.InFlight <= 0 {
		return 0
	}
	return w.InFlight / (admitted / float64(w.Pods))
}

// workersRec recommends workers per pod from ws[0] (ws[1:] are older
// windows, for the latency baseline), W being the limit the pods ran with.
//
// In the spirit of Gradient2 and TCP Vegas: the in-service time of a
// request (Little's law: in flight / throughput) is compared with its
// lowest recent value. While requests queue for a worker and the pod has
// spare capacity (CPU under 80% when known, else in-service time under
// twice its baseline), the limit keeps that capacity from use: raise the
// limit to what Little's law says the arriving load needs in flight, at
// the target utilization. When p99 is over the
// objective and the pod is saturated (CPU at its limit or, with no CPU
// figure, in-service time at least twice its baseline) with its workers
// full, the limit admits more than the pod can serve: cut it to twice the
// concurrency the pod sustains at its baseline latency (at the target), so
// the excess waits in the queue (and shows replicas the demand) instead of
// slowing every request in flight. With CPU known, requests are never cut
// for slowness alone: a slow database is not over-admission.
func (p params) workersRec(ws []Window, W int32) rec {
	w := ws[0]
	hold := func(why string) rec { return rec{to: W, reason: why} }
	t := serviceTime(w)
	if t <= 0 || W <= 0 {
		return hold("")
	}
	pods := float64(w.Pods)
	perPod := (w.RequestRate - w.ShedRate - w.RateLimitedRate) / pods
	base := t
	for i := 1; i < len(ws) && i < baselineWindows; i++ {
		if b := serviceTime(ws[i]); b > 0 && b < base {
			base = b
		}
	}
	gradient := base / t
	cpu := -1.0
	if p.podCPU > 0 {
		cpu = w.CPUCores / p.podCPU
	}
	saturated := gradient < 0.5
	load := fmt.Sprintf("in-service time %s (baseline %s)", secs(t), secs(base))
	if cpu >= 0 {
		saturated = cpu >= cpuSaturated
		load = fmt.Sprintf("CPU %s of %s cores, ", num(w.CPUCores), num(p.podCPU)) + load
	}
	over := p.over(w)
	full := w.InFlight >= 0.8*float64(W) || w.QueueLength >= 1
	queued := w.QueueLength >= 0.5 || w.ShedRate > 0

	switch {
	case over && saturated && full:
		// What the pod sustains without queueing inside: its throughput
		// at the baseline latency (Little's law). When CPU is known, its
		// throughput is what the CPU carries at the lowest recent CPU cost
		// per request, since over-admission itself inflates that cost.
		capacity := perPod
		if p.podCPU > 0 {
			if c := cpuPerRequest(ws); c > 0 {
				capacity = max(capacity, p.podCPU/c)
			}
		}
		sustain := capacity * base
		to := ceil32(trimHeadroom * sustain / p.target)
		if float64(to) >= float64(W)*(1-tolerance) {
			return hold(fmt.Sprintf("workers saturated at %s in flight but already near the %s the pod sustains", num(w.InFlight), num(sustain)))
		}
		return rec{to: to, urgent: true, reason: fmt.Sprintf(
			"%s > objective %s with %s and %s of %d workers busy: %s (Little's law: %s req/s × %s = %s in flight per pod at the baseline latency; %g× that at %s target)",
			p.p99(w), ms(p.objective), load, num(w.InFlight), W, arrow(SettingWorkers, W, to),
			num(capacity), secs(base), num(sustain), trimHeadroom, pct(p.target))}
	case queued && !saturated && (cpu < 0 && gradient >= 0.5 || cpu >= 0 && cpu < cpuRoom):
		arrive := (w.RequestRate - w.RateLimitedRate) / pods
		need := arrive * t
		to := ceil32(need / p.target)
		if float64(to) <= float64(W)*(1+tolerance) {
			return hold(fmt.Sprintf("queue %s/pod but workers already fit Little's law (%s in flight needed)", num(w.QueueLength), num(need)))
		}
		return rec{to: to, reason: fmt.Sprintf(
			"%s (objective %s) with queue %s/pod while %s: %s (Little's law needs %s in flight per pod: %s req/s × %s, at %s target)",
			p.p99(w), ms(p.objective), num(w.QueueLength), load, arrow(SettingWorkers, W, to),
			num(need), num(arrive), secs(t), pct(p.target))}
	case !queued && !over && p.podCPU > 0 && p.latencyKnown(w):
		// (A quiet window's CPU per request is mostly idle CPU: no trim on it.)
		// Trim a limit far above what the pod can carry, so a sudden
		// overload queues instead of crowding the CPU: to twice the
		// concurrency the pod sustains at full CPU and its baseline
		// latency (or the current need, if more), at the target, after
		// the scale-down window. Twice, because in-service time grows as
		// the CPU gets busy.
		c := cpuPerRequest(ws)
		if c <= 0 {
			return hold("")
		}
		sustain := p.podCPU / c * base
		need := (w.RequestRate - w.RateLimitedRate) / pods * t
		to := ceil32(trimHeadroom * max(sustain, need) / p.target)
		if to >= W/2 {
			return hold("")
		}
		return rec{to: to, reason: fmt.Sprintf(
			"only %s of %d workers busy per pod with no queue, %s within objective %s: %s (Little's law: a pod's %s cores carry %s req/s × %s = %s in flight; %g× that at %s target)",
			num(w.InFlight), W, p.p99(w), ms(p.objective), arrow(SettingWorkers, W, to), num(p.podCPU), num(p.podCPU/c), secs(base), num(sustain), trimHeadroom, pct(p.target))}
	}
	return hold("")
}

// cpuPerRequest is the lowest CPU cost of a request (core-seconds) over the
// recent windows; 0 when unknown.
func cpuPerRequest(ws []Window) float64 {
	best := 0.0
	for i := 0; i < len(ws) && i < baselineWindows; i++ {
		w := ws[i]
		served := (w.RequestRate - w.ErrorRate - w.RateLimitedRate) / float64(max(w.Pods, 1))
		if served <= 0 || w.CPUCores <= 0 {
			continue
		}
		if c := w.CPUCores / served; best == 0 || c < best {
			best = c
		}
	}
	return best
}
