package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

func TestSettingsInEffect(t *testing.T) {
	spec := pacerv1.Settings{Replicas: 2, MaxInFlight: 64, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 10000}
	tuned := spec
	tuned.Replicas, tuned.MaxInFlight, tuned.PoolMaxConns = 4, 96, 8

	base := func(mode pacerv1.TuningMode, mutate ...func(*pacerv1.TunedService)) *pacerv1.TunedService {
		ts := &pacerv1.TunedService{Spec: pacerv1.TunedServiceSpec{
			Replicas: ptr.To[int32](2),
			Tuning: pacerv1.TuningSpec{Mode: mode, Bounds: pacerv1.TuningBounds{
				Replicas: &pacerv1.Int32Range{Min: 1, Max: 6},
				Workers:  &pacerv1.Int32Range{Min: 8, Max: 256},
			}},
		}}
		ts.Status.Effective = &pacerv1.EffectiveSettings{Settings: tuned, SpecSettings: ptr.To(spec)}
		for _, m := range mutate {
			m(ts)
		}
		return ts
	}

	tests := []struct {
		name      string
		ts        *pacerv1.TunedService
		want      pacerv1.Settings
		wantEdits []string
	}{{
		name: "Auto keeps tuned values of bounded settings only",
		ts:   base(pacerv1.TuningAuto),
		// poolMaxConns has no bounds: the spec's 16, not the 8 in status.
		want: pacerv1.Settings{Replicas: 4, MaxInFlight: 96, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 10000},
	}, {
		name: "Recommend renders the spec as written",
		ts:   base(pacerv1.TuningRecommend),
		want: spec,
	}, {
		name: "Off renders the spec as written",
		ts:   base(pacerv1.TuningOff),
		want: spec,
	}, {
		name:      "a user's edit of a tuned setting wins and is recorded",
		ts:        base(pacerv1.TuningAuto, func(ts *pacerv1.TunedService) { ts.Spec.Workers.MaxInFlight = 32 }),
		want:      pacerv1.Settings{Replicas: 4, MaxInFlight: 32, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 10000},
		wantEdits: []string{"maxInFlight"},
	}, {
		name: "no status yet: the spec",
		ts:   func() *pacerv1.TunedService { ts := base(pacerv1.TuningAuto); ts.Status.Effective = nil; return ts }(),
		want: spec,
	}, {
		name: "tuned replicas with the spec's pool exceeding the budget shrink the pool",
		ts: base(pacerv1.TuningAuto, func(ts *pacerv1.TunedService) {
			ts.Spec.Database.MaxTotalConnections = ptr.To[int32](40)
		}),
		want:      pacerv1.Settings{Replicas: 4, MaxInFlight: 96, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 10, CacheMaxEntries: 10000},
		wantEdits: []string{"poolMaxConns"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, edits := settingsInEffect(tc.ts)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			var names []string
			for _, e := range edits {
				names = append(names, e.Setting)
				if e.Reason == "" {
					t.Errorf("edit of %s has no reason", e.Setting)
				}
			}
			if diff := cmp.Diff(tc.wantEdits, names, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("recorded edits (-want +got):\n%s", diff)
			}
			if b := tc.ts.Spec.Database.MaxTotalConnections; b != nil && got.Replicas*got.PoolMaxConns > *b {
				t.Errorf("%d × %d exceeds the budget %d", got.Replicas, got.PoolMaxConns, *b)
			}
		})
	}
}
