package tuning

import (
	"fmt"
)

// served is the number of requests the window's pods took in (not
// refused), for judging whether its quantiles count.
func (p params) served(w Window) float64 {
	d := w.End.Sub(w.Start)
	if d <= 0 {
		d = p.interval
	}
	return admitted(w) * d.Seconds()
}

// latencyKnown says whether the window's p99 was measured: enough requests
// were served and the latency histogram saw them. An empty histogram is
// not a p99 of 0.
func (p params) latencyKnown(w Window) bool {
	return w.P99 > 0 && p.served(w) >= minLatencyRequests
}

// over says whether the window violates the objective: p99 past it, or,
// when p99 was not measured, requests refused by the worker queue.
func (p params) over(w Window) bool {
	if p.latencyKnown(w) {
		return w.P99 > p.objective
	}
	return w.ShedRate > 0
}

// near says whether p99 is known to be within nearObjective of the
// objective or past it, or the window is too quiet to measure and shed
// requests.
func (p params) near(w Window) bool {
	if p.latencyKnown(w) {
		return w.P99.Seconds() >= nearObjective*p.objective.Seconds()
	}
	return w.ShedRate > 0
}

// p99 formats the window's p99 for a reason, or says why it is unknown.
func (p params) p99(w Window) string {
	if p.latencyKnown(w) {
		return "p99 " + ms(w.P99)
	}
	why := fmt.Sprintf("%s requests served", num(p.served(w)))
	if w.P99 <= 0 && p.served(w) >= minLatencyRequests {
		why = "no latency recorded"
	}
	if w.ShedRate > 0 && w.RequestRate > 0 {
		why += fmt.Sprintf(", %s shed", pct(w.ShedRate/w.RequestRate))
	}
	return "p99 not measured (" + why + ")"
}
