package budget

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// tunedMember is a member of 2 replicas × pool 4 in effect, tuned within
// 1–10 replicas and pool 2–8, min 10.
func tunedMember(mode pacerv1.TuningMode) *pacerv1.TunedService {
	ts := &pacerv1.TunedService{}
	ts.Spec.Replicas = ptr.To[int32](2)
	ts.Spec.Database.Pool.MaxConns = 4
	ts.Spec.Database.BudgetRef = &pacerv1.BudgetRef{Name: "b", Min: 10, Weight: 1}
	ts.Spec.Tuning.Mode = mode
	ts.Spec.Tuning.Bounds = pacerv1.TuningBounds{
		Replicas:     &pacerv1.Int32Range{Min: 1, Max: 10},
		PoolMaxConns: &pacerv1.Int32Range{Min: 2, Max: 8},
	}
	ts.Status.Effective = &pacerv1.EffectiveSettings{Settings: pacerv1.Settings{Replicas: 2, PoolMaxConns: 4}}
	return ts
}

func TestNeedOf(t *testing.T) {
	tests := []struct {
		name string
		ts   func() *pacerv1.TunedService
		want int64
	}{
		{"nothing rendered yet: its minimum", func() *pacerv1.TunedService {
			ts := tunedMember(pacerv1.TuningAuto)
			ts.Status.Effective = nil
			return ts
		}, 10},
		{"the settings in effect and a pod more", func() *pacerv1.TunedService { return tunedMember(pacerv1.TuningAuto) }, 15},
		{"the recommendation and a pod more", func() *pacerv1.TunedService {
			ts := tunedMember(pacerv1.TuningAuto)
			ts.Status.Recommendation = &pacerv1.Recommendation{Settings: pacerv1.Settings{Replicas: 4, PoolMaxConns: 6}}
			return ts
		}, 35},
		{"never beyond what its bounds can use", func() *pacerv1.TunedService {
			ts := tunedMember(pacerv1.TuningAuto)
			ts.Status.Recommendation = &pacerv1.Recommendation{Settings: pacerv1.Settings{Replicas: 10, PoolMaxConns: 8}}
			return ts
		}, 90},
		{"replicas not tuned: a connection more per pod", func() *pacerv1.TunedService {
			ts := tunedMember(pacerv1.TuningAuto)
			ts.Spec.Tuning.Bounds.Replicas = nil
			return ts
		}, 12},
		{"replicas not tuned and capped by the budget: the spec's (an HPA's) replicas", func() *pacerv1.TunedService {
			ts := tunedMember(pacerv1.TuningAuto)
			ts.Spec.Tuning.Bounds.Replicas = nil
			ts.Spec.Replicas = ptr.To[int32](3) // 2 rendered
			return ts
		}, 18},
		{"disabled: the settings in effect, a recommendation left over ignored", func() *pacerv1.TunedService {
			ts := tunedMember(pacerv1.TuningDisabled)
			ts.Status.Recommendation = &pacerv1.Recommendation{Settings: pacerv1.Settings{Replicas: 10, PoolMaxConns: 8}}
			return ts
		}, 15},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedOf(tc.ts()); got != tc.want {
				t.Errorf("NeedOf = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestWorstCaseOfCountsPodsHealthPoolsAndAPoolNotYetCut(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	cut := func(ago time.Duration) []pacerv1.Decision {
		return []pacerv1.Decision{{Time: metav1.NewTime(now.Add(-ago)), Applied: true,
			Changes: []pacerv1.Change{{Setting: tuning.SettingPool, From: 8, To: 4}}}}
	}
	tests := []struct {
		name      string
		pods      int32
		history   []pacerv1.Decision
		trusted   time.Duration // a sufficient window that started this long ago; 0: none
		want, per int64
	}{
		{"replicas in effect × (pool + 1)", 0, nil, 0, 10, 5},
		{"more pods than replicas (a surge, terminating pods)", 3, nil, 0, 15, 5},
		{"a cut not yet seen: the old pool", 2, cut(30 * time.Second), 0, 18, 9},
		{"a cut seen by a trusted window that started after it", 2, cut(60 * time.Second), 30 * time.Second, 10, 5},
		{"a cut older than the config delivery time", 2, cut(3 * time.Minute), 0, 10, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := tunedMember(pacerv1.TuningAuto)
			ts.Status.History = tc.history
			if tc.trusted > 0 {
				ts.Status.LastObservation = &pacerv1.Observation{Time: metav1.NewTime(now), Window: metav1.Duration{Duration: tc.trusted}, Sufficient: true}
			}
			got, per := WorstCaseOf(ts, tc.pods, now)
			if got != tc.want || per != tc.per {
				t.Errorf("WorstCaseOf = %d (%d per pod), want %d (%d)", got, per, tc.want, tc.per)
			}
		})
	}
}
