package controllers

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

func TestCapToBudgetShrinksThePoolFirstThenTheReplicas(t *testing.T) {
	tests := []struct {
		name              string
		in                pacerv1.Settings
		limit, smallest   int32
		want              pacerv1.Settings
		wantCapped        bool
		wantAskedReplicas int32
	}{
		{"fits: untouched", pacerv1.Settings{Replicas: 3, PoolMaxConns: 3, PoolMinConns: 2}, 12, 2,
			pacerv1.Settings{Replicas: 3, PoolMaxConns: 3, PoolMinConns: 2}, false, 0},
		{"no budget: untouched", pacerv1.Settings{Replicas: 30, PoolMaxConns: 8}, 0, 2,
			pacerv1.Settings{Replicas: 30, PoolMaxConns: 8}, false, 0},
		{"the pool shrinks to what fits with the health pool", pacerv1.Settings{Replicas: 4, PoolMaxConns: 4, PoolMinConns: 4}, 12, 2,
			pacerv1.Settings{Replicas: 4, PoolMaxConns: 2, PoolMinConns: 2}, false, 0},
		{"even the smallest pool does not fit: replicas capped", pacerv1.Settings{Replicas: 5, PoolMaxConns: 4, PoolMinConns: 2}, 12, 2,
			pacerv1.Settings{Replicas: 4, PoolMaxConns: 2, PoolMinConns: 2}, true, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			asked, capped := capToBudget(&got, tc.limit, tc.smallest)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			if capped != tc.wantCapped || asked != tc.wantAskedReplicas {
				t.Errorf("capped = %v (asked %d), want %v (%d)", capped, asked, tc.wantCapped, tc.wantAskedReplicas)
			}
			if tc.limit > 0 && tuning.WorstCaseConnections(got.Replicas, got.PoolMaxConns) > int64(tc.limit) {
				t.Errorf("%d × (%d + 1) exceeds the budget %d", got.Replicas, got.PoolMaxConns, tc.limit)
			}
		})
	}
}

// An HPA added beside a service the tuner had scaled takes the replicas
// only once it has scaled from its metrics: until then spec.replicas is
// the user's 1, and rendering it dropped the tuner's 2 pods to 1 for
// about 30 s (the shared-budget e2e). Once it had them, it keeps them.
func TestReplicasGoToAnHPAOnceItIsActive(t *testing.T) {
	ts := &pacerv1.TunedService{}
	ts.Spec.Replicas = ptr.To[int32](1)
	ts.Spec.Tuning.Mode = pacerv1.TuningAuto
	ts.Spec.Tuning.Bounds.Replicas = &pacerv1.Int32Range{Min: 1, Max: 4}
	specSettings := render.SpecSettings(&ts.Spec)
	tunedTo := specSettings
	tunedTo.Replicas = 2
	rendered := func(s *scope) int32 {
		l := tuning.NewLoop(tuning.Seed{Effective: &pacerv1.EffectiveSettings{Settings: tunedTo, SpecSettings: &specSettings}, Mode: pacerv1.TuningAuto})
		got, _ := l.Sync(time.Now(), loopSpec(s))
		return got.Replicas
	}
	handed := ts.DeepCopy()
	meta.SetStatusCondition(&handed.Status.Conditions, metav1.Condition{Type: pacerv1.ConditionAutoscaled, Status: metav1.ConditionTrue, Reason: "ReplicasHandedToHPA"})
	for _, tc := range []struct {
		name   string
		s      *scope
		want   int32
		handed bool
	}{
		{"no HPA: the tuner's", &scope{ts: ts, before: ts}, 2, false},
		{"an HPA that has not scaled yet: still the tuner's", &scope{ts: ts, before: ts, hpa: &autoscaler{name: "h", max: 4}}, 2, false},
		{"an active HPA: spec.replicas, which it writes", &scope{ts: ts, before: ts, hpa: &autoscaler{name: "h", max: 4, active: true}}, 1, true},
		{"an HPA that had them and lost its metrics: still its", &scope{ts: ts, before: handed, hpa: &autoscaler{name: "h", max: 4}}, 1, true},
	} {
		if got := rendered(tc.s); got != tc.want || tc.s.handsReplicasToHPA() != tc.handed {
			t.Errorf("%s: replicas %d (handed %v), want %d (handed %v)", tc.name, got, tc.s.handsReplicasToHPA(), tc.want, tc.handed)
		}
	}
}
