package sim

import (
	"math"
	"time"
)

// Trace is a load over time.
type Trace struct {
	// Name identifies the trace in the scorecard.
	Name string
	// Warmup is simulated before scoring starts, at Load(0)'s level,
	// so every policy starts scoring from where it settles.
	Warmup time.Duration
	// Duration is the scored length.
	Duration time.Duration
	// Load gives the load at t seconds into the scored part (t < 0 during warm-up).
	Load func(t float64) Load
	// Changes are the times (seconds into the scored part) where the load
	// changes, for recovery and for the reversal budget.
	Changes []float64
	// Steps are the changes after which recovery is measured.
	Steps []float64
}

// BaseRate is the normal load of the scorecard's traces, in requests per second.
const BaseRate = 1500

// Traces are the scorecard's load traces.
func Traces() []Trace {
	const minute = 60.0
	normal := func(rate float64) Load { return Load{Rate: rate, DBSlow: 1} }
	between := func(t, from, to float64) bool { return t >= from && t < to }
	return []Trace{
		{Name: "steady", Load: func(float64) Load { return normal(BaseRate) }},
		{Name: "step-up-2x", Changes: []float64{10 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				if t >= 10*minute {
					return normal(2 * BaseRate)
				}
				return normal(BaseRate)
			}},
		{Name: "step-down", Changes: []float64{10 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				if t >= 10*minute {
					return normal(BaseRate)
				}
				return normal(2 * BaseRate)
			}},
		{Name: "diurnal", Changes: []float64{7.5 * minute, 22.5 * minute},
			Load: func(t float64) Load {
				return normal(BaseRate * (1 + 0.6*math.Sin(2*math.Pi*math.Max(t, 0)/(30*minute))))
			}},
		{Name: "spike-3x", Changes: []float64{10 * minute, 11 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				if between(t, 10*minute, 11*minute) {
					return normal(3 * BaseRate)
				}
				return normal(BaseRate)
			}},
		{Name: "slow-db-3x", Changes: []float64{10 * minute, 25 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				l := normal(BaseRate)
				if between(t, 10*minute, 25*minute) {
					l.DBSlow = 3
				}
				return l
			}},
		{Name: "cache-hostile", Changes: []float64{10 * minute, 25 * minute}, Steps: []float64{10 * minute},
			Load: func(t float64) Load {
				l := normal(BaseRate)
				l.Hostile = between(t, 10*minute, 25*minute)
				return l
			}},
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
