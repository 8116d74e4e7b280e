package tuning

import (
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// params are the spec's knobs with defaults applied, resolved once per decision.
type params struct {
	objective time.Duration
	target    float64 // targetUtilization as a fraction
	interval  time.Duration
	up, down  time.Duration // stabilization windows
	budget    int32         // maxTotalConnections; 0 = none
	podCPU    float64
	bounds    pacerv1.TuningBounds
}

func resolve(in Input) params {
	t := in.Tuning
	p := params{
		objective: defaultObjective,
		target:    defaultTarget / 100.0,
		interval:  defaultInterval,
		down:      defaultScaleDown,
		budget:    in.MaxTotalConnections,
		podCPU:    in.PodCPU,
		bounds:    t.Bounds,
	}
	if o := t.Objective.LatencyP99; o != nil && o.Duration > 0 {
		p.objective = o.Duration
	}
	if u := t.Objective.TargetUtilization; u != nil && *u > 0 {
		p.target = float64(*u) / 100
	}
	if i := t.Interval; i != nil && i.Duration > 0 {
		p.interval = i.Duration
	}
	if s := t.Stabilization.ScaleUp; s != nil && s.Duration >= 0 {
		p.up = s.Duration
	}
	if s := t.Stabilization.ScaleDown; s != nil && s.Duration >= 0 {
		p.down = s.Duration
	}
	return p
}

// ObservePeriod is how often a TunedService whose interval is interval is
// observed: the interval split into the fewest equal windows no longer
// than panicHorizon, so every decision falls on a window's end.
func ObservePeriod(interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = defaultInterval
	}
	if interval <= panicHorizon {
		return interval
	}
	n := (interval + panicHorizon - 1) / panicHorizon
	return interval / n
}
