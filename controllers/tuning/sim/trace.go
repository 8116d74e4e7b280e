package sim

import (
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Trace is a load over time.
type Trace struct {
	// Name identifies the trace in the scorecard; About describes it.
	Name, About string
	// Warmup is simulated before scoring starts, at Load(0)'s level,
	// so every policy starts scoring from where it settles.
	Warmup time.Duration
	// Duration is the scored length.
	Duration time.Duration
	// Load gives the load at t seconds into the scored part.
	Load func(t float64) Load
	// Changes are the times (seconds into the scored part) where the load
	// changes, for the reversal budget.
	Changes []float64
	// Steps are the changes after which recovery is measured; Step2x marks
	// the trace whose step is the 2× step of the recovery target.
	Steps  []float64
	Step2x bool
	// Adjust changes the scenario for this trace (a tighter budget, a
	// shorter interval); nil keeps it.
	Adjust func(*Scenario)
}

// BaseRate is the normal load of the scorecard's traces, in requests per second.
const BaseRate = 1500

const minute = 60.0

func normal(rate float64) Load { return Load{Rate: rate, DBSlow: 1} }

func between(t, from, to float64) bool { return t >= from && t < to }

// ramp is from before a, to after b, linear in between.
func ramp(t, a, b, from, to float64) float64 {
	switch {
	case t <= a:
		return from
	case t >= b:
		return to
	}
	return from + (to-from)*(t-a)/(b-a)
}

// bursts: 2.5× for 10 s at the start of every minute from minute 5 to 25.
func burstTimes() []float64 {
	var ts []float64
	for m := 5.0; m < 25; m++ {
		ts = append(ts, m*minute, m*minute+10)
	}
	return ts
}

// Traces are the scorecard's load traces.
func Traces() []Trace {
	step := func(at, before, after float64) func(float64) Load {
		return func(t float64) Load {
			if t >= at {
				return normal(after)
			}
			return normal(before)
		}
	}
	return []Trace{
		{Name: "steady", About: "1× throughout", Load: func(float64) Load { return normal(BaseRate) }},
		{Name: "step-up-2x", About: "1× to 2× at minute 10", Changes: []float64{10 * minute}, Steps: []float64{10 * minute}, Step2x: true,
			Load: step(10*minute, BaseRate, 2*BaseRate)},
		{Name: "step-down", About: "2× to 1× at minute 10", Changes: []float64{10 * minute},
			Load: step(10*minute, 2*BaseRate, BaseRate)},
		{Name: "ramp-up", About: "1× to 3× linearly from minute 5 to 15, then 3×", Changes: []float64{5 * minute},
			Load: func(t float64) Load { return normal(BaseRate * ramp(t, 5*minute, 15*minute, 1, 3)) }},
		{Name: "ramp-down", About: "3× to 1× linearly from minute 5 to 15, then 1×", Changes: []float64{5 * minute},
			Load: func(t float64) Load { return normal(BaseRate * ramp(t, 5*minute, 15*minute, 3, 1)) }},
		{Name: "diurnal", About: "a sine from 0.4× to 1.6× over the 30 minutes", Changes: []float64{7.5 * minute, 22.5 * minute},
			Load: func(t float64) Load { return normal(BaseRate * (1 + 0.6*math.Sin(2*math.Pi*t/(30*minute)))) }},
		{Name: "bursts", About: "2.5× for 10 s every minute from minute 5 to 25", Changes: burstTimes(),
			Load: func(t float64) Load {
				if between(t, 5*minute, 25*minute) && math.Mod(t, minute) < 10 {
					return normal(2.5 * BaseRate)
				}
				return normal(BaseRate)
			}},
		{Name: "flash-crowd", About: "to 4× within 20 s at minute 10, decaying back with a 3-minute time constant", Changes: []float64{10 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				switch {
				case t < 10*minute:
					return normal(BaseRate)
				case t < 10*minute+20:
					return normal(BaseRate * ramp(t, 10*minute, 10*minute+20, 1, 4))
				}
				return normal(BaseRate * (1 + 3*math.Exp(-(t-10*minute-20)/(3*minute))))
			}},
		{Name: "spike-3x", About: "3× for one minute at minute 10", Changes: []float64{10 * minute, 11 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				if between(t, 10*minute, 11*minute) {
					return normal(3 * BaseRate)
				}
				return normal(BaseRate)
			}},
		{Name: "idle", About: "1 req/s from minute 5 to 20 (idle), then 1× at once", Changes: []float64{5 * minute, 20 * minute}, Steps: []float64{20 * minute},
			Load: func(t float64) Load {
				if between(t, 5*minute, 20*minute) {
					return normal(1)
				}
				return normal(BaseRate)
			}},
		{Name: "quiet", About: "0.3× from minute 5 on (a quiet night)", Changes: []float64{5 * minute},
			Load: step(5*minute, BaseRate, 0.3*BaseRate)},
		{Name: "slow-db-3x", About: "query time ×3 from minute 10 to 25", Changes: []float64{10 * minute, 25 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				l := normal(BaseRate)
				if between(t, 10*minute, 25*minute) {
					l.DBSlow = 3
				}
				return l
			}},
		{Name: "slow-db-tight-budget", About: "max_connections and budget 40, query time ×3 from minute 10 to 25", Changes: []float64{10 * minute, 25 * minute}, Steps: []float64{10 * minute},
			Adjust: func(sc *Scenario) {
				sc.Model.MaxConnections, sc.Budget = 40, 40
				sc.Start.PoolMaxConns = 8
			},
			Load: func(t float64) Load {
				l := normal(BaseRate)
				if between(t, 10*minute, 25*minute) {
					l.DBSlow = 3
				}
				return l
			}},
		{Name: "cache-hostile", About: "uniform keys from minute 10 to 25", Changes: []float64{10 * minute, 25 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				l := normal(BaseRate)
				l.Hostile = between(t, 10*minute, 25*minute)
				return l
			}},
		{Name: "short-interval-step-down", About: "interval 5 s, scale-down window 5 m; 2× to 1× at minute 5", Changes: []float64{5 * minute},
			Adjust: func(sc *Scenario) {
				sc.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
				sc.Tuning.Stabilization.ScaleDown = &metav1.Duration{Duration: 5 * time.Minute}
			},
			Load: step(5*minute, 2*BaseRate, BaseRate)},
	}
}

// withDefaults fills a trace's warm-up and duration.
func (tr Trace) withDefaults() Trace {
	if tr.Warmup == 0 {
		tr.Warmup = 5 * time.Minute
	}
	if tr.Duration == 0 {
		tr.Duration = 30 * time.Minute
	}
	return tr
}

// scenario is sc as this trace runs it.
func (tr Trace) scenario(sc Scenario) Scenario {
	if tr.Adjust != nil {
		sc.Tuning = *sc.Tuning.DeepCopy()
		tr.Adjust(&sc)
	}
	return sc
}
