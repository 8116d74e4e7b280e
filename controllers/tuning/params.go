package tuning

import (
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Defaults used when the spec leaves a field empty (the API server applies
// the same defaults; these keep Decide total on unvalidated input).
const (
	defaultObjective   = 100 * time.Millisecond
	defaultTarget      = 70
	defaultInterval    = 30 * time.Second
	defaultScaleDown   = 5 * time.Minute
	stableWindow       = 60 * time.Second // Knative's default stable window
	staleAfter         = 2                // intervals after which a window is stale
	tolerance          = 0.10             // relative error inside which nothing changes
	nearObjective      = 0.8              // p99 this share of the objective counts as near it
	trendMin           = 0.10             // the least rise across the stable window that counts as a trend
	panicFactor        = 2.0              // Knative's panic threshold: 200% of current pods
	revertWithin       = 3                // intervals after a change in which it may be reverted
	revertWorseFactor  = 1.25             // p99 this much worse than before the change
	revertLoadDrift    = 0.05             // request rates within 5% count as the same load
	baselineWindows    = 10               // windows searched for the in-service latency baseline
	trimHeadroom       = 2.0              // a trimmed worker limit is this many times the need
	exploreRate        = 0.10             // without CPU, how far past the best per-pod rate a scale-down may go
	cpuRoom            = 0.80             // CPU use / PodCPU under which workers may rise
	cpuSaturated       = 0.90             // CPU use / PodCPU at which a pod counts as saturated
	cacheEvictionShare = 0.10             // evictions / lookups above which the cache is too small
	cacheHostileHit    = 0.05             // hit ratio below which growing the cache is pointless
	cacheMinGain       = 0.02             // hit-ratio gain a cache growth must bring to count as useful
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
