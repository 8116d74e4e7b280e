package sim

import (
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// Pacer is the operator's tuner: the same tuning.Loop the reconciler
// runs. The adapter does only what the reconciler's I/O does: it hands
// each window to the loop and applies the settings it returns.
type Pacer struct{}

func (Pacer) Name() string { return "pacer" }

// ReadsLatency: the tuner reads p99 from the histogram buckets.
func (Pacer) ReadsLatency() bool { return true }

// ObservePeriod: the loop is handed a window every ObservePeriod of the
// interval, as the reconciler's observer makes them.
func (Pacer) ObservePeriod(sc Scenario) time.Duration { return tuning.ObservePeriod(sc.interval()) }

func (Pacer) Start(sc Scenario) (pacerv1.Settings, Controller) {
	spec := tuning.Spec{Tuning: sc.Tuning, Settings: sc.Start, MaxTotalConnections: sc.Budget}
	if !sc.NoCPULimit {
		spec.PodCPULimit = sc.Model.PodCores // the pods' CPU limit
	}
	return sc.Start, &pacerCtl{loop: tuning.NewLoop(tuning.Seed{}), spec: spec}
}

type pacerCtl struct {
	loop *tuning.Loop
	spec tuning.Spec
}

func (p *pacerCtl) Step(s Step) tuning.Decision {
	if s.Window == nil {
		return hold(s)
	}
	res := p.loop.Step(tuning.Tick{Now: s.Now, Spec: p.spec, Window: s.Window, Terminating: int32(s.Terminating)})
	d := tuning.Decision{Settings: res.Settings, Summary: res.Condition.Message}

	if res.Decision != nil {
		d.Changes = res.Decision.Changes
	}
	return d
}
