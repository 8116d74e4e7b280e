package controllers

import (
	"fmt"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
)

// tunable names a setting the tuner may change, with its bounds.
type tunable struct {
	name   string
	field  func(*pacerv1.Settings) *int32
	bounds func(*pacerv1.TuningBounds) *pacerv1.Int32Range
}

var tunables = []tunable{
	{"replicas", func(s *pacerv1.Settings) *int32 { return &s.Replicas },
		func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.Replicas }},
	{"maxInFlight", func(s *pacerv1.Settings) *int32 { return &s.MaxInFlight },
		func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.Workers }},
	{"poolMaxConns", func(s *pacerv1.Settings) *int32 { return &s.PoolMaxConns },
		func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.PoolMaxConns }},
	{"cacheMaxEntries", func(s *pacerv1.Settings) *int32 { return &s.CacheMaxEntries },
		func(b *pacerv1.TuningBounds) *pacerv1.Int32Range { return b.CacheMaxEntries }},
}

// settingsInEffect are the settings to render: the spec's, except that in
// Auto mode a setting with bounds keeps the value the tuner chose, unless
// the user has since changed that setting in the spec. The user's edit wins
// and is returned as a change to record. A pure function of ts.
//
// The tuner's choices live in status.effective. Were status lost, the
// service would restart from the spec's values, which is safe.
func settingsInEffect(ts *pacerv1.TunedService) (pacerv1.Settings, []pacerv1.Change) {
	spec := render.SpecSettings(&ts.Spec)
	eff := ts.Status.Effective
	if modeOrDefault(ts.Spec.Tuning.Mode) != pacerv1.TuningAuto || eff == nil {
		return spec, nil
	}
	out := spec
	var edits []pacerv1.Change
	for _, t := range tunables {
		if t.bounds(&ts.Spec.Tuning.Bounds) == nil {
			continue // not tuned: always as the spec says
		}
		tuned, wanted := *t.field(&eff.Settings), *t.field(&spec)
		if base := eff.SpecSettings; base != nil && *t.field(base) != wanted {
			if tuned != wanted {
				edits = append(edits, pacerv1.Change{
					Setting: t.name, From: tuned, To: wanted,
					Reason: fmt.Sprintf("the spec's %s changed to %d: the user's edit wins over the tuner's %d", t.name, wanted, tuned),
				})
			}
			continue
		}
		*t.field(&out) = tuned
	}
	if fix, ok := fitBudget(&out, ts.Spec.Database.MaxTotalConnections); ok {
		edits = append(edits, fix)
	}
	return out, edits
}

// fitBudget shrinks the pool when replicas × pool would exceed the
// database's connection budget, which a mix of user edits and tuned values
// could otherwise reach.
func fitBudget(s *pacerv1.Settings, budget *int32) (pacerv1.Change, bool) {
	if budget == nil || s.Replicas == 0 || s.Replicas*s.PoolMaxConns <= *budget {
		return pacerv1.Change{}, false
	}
	from := s.PoolMaxConns
	s.PoolMaxConns = max(1, *budget/s.Replicas)
	return pacerv1.Change{
		Setting: "poolMaxConns", From: from, To: s.PoolMaxConns,
		Reason: fmt.Sprintf("%d replicas × %d connections would exceed the budget of %d", s.Replicas, from, *budget),
	}, true
}
