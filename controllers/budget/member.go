package budget

import (
	"time"

	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// configDelivery is how long, in seconds, a pod may keep the pool it had
// after a change: the kubelet delivers a ConfigMap change within its sync
// period (a minute by default) plus its cache's time to live, and the
// pod drains the old pool within the request timeout.
const configDelivery = 120 * time.Second

// NeedOf is what a member's tuner wants: the settings it recommends (or
// those in effect, and the replicas the spec asks for when they are not
// tuned) with room for one more step, a pod more when replicas
// are tuned, a connection more per pod when only the pool is, within what
// its bounds can use and never below its minimum.
func NeedOf(ts *pacerv1.TunedService) int64 {
	ref := ts.Spec.Database.BudgetRef
	floor := int64(ref.Min)
	s, ok := wanted(ts)
	if !ok {
		return floor
	}
	b := ts.Spec.Tuning.Bounds
	if b.Replicas == nil {
		// Replicas follow the spec (a user's, or an HPA's through the
		// scale subresource): asked for, even if the budget capped them.
		s.Replicas = max(s.Replicas, ptr.Deref(ts.Spec.Replicas, 1))
	}
	want := tuning.WorstCaseConnections(s.Replicas, s.PoolMaxConns)
	switch {
	case b.Replicas != nil:
		want += tuning.PodConnections(s.PoolMaxConns)
	case b.PoolMaxConns != nil:
		want += int64(max(s.Replicas, 0))
	}
	return max(floor, min(want, MostUsable(ts)))
}

// MostUsable is the most connections a member's bounds let its pods hold
// (replicas.max × (poolMaxConns.max + 1)); the spec's values where a
// setting is not tuned.
func MostUsable(ts *pacerv1.TunedService) int64 {
	b := ts.Spec.Tuning.Bounds
	r := ptr.Deref(ts.Spec.Replicas, 1)
	if b.Replicas != nil {
		r = b.Replicas.Max
	}
	p := ts.Spec.Database.Pool.MaxConns
	if b.PoolMaxConns != nil {
		p = b.PoolMaxConns.Max
	}
	return tuning.WorstCaseConnections(r, p)
}

// wanted are the settings a member's tuner wants: its recommendation in
// Auto and Recommend, else the settings in effect.
func wanted(ts *pacerv1.TunedService) (pacerv1.Settings, bool) {
	mode := tuning.ModeOf(ts.Spec.Tuning.Mode)
	if rec := ts.Status.Recommendation; rec != nil && (mode == pacerv1.TuningAuto || mode == pacerv1.TuningRecommend) {
		return rec.Settings, true
	}
	if e := ts.Status.Effective; e != nil {
		return e.Settings, true
	}
	return pacerv1.Settings{}, false
}

// WorstCaseOf is the most a member's pods may hold now: pods that exist
// (starting, surging or terminating) or the replicas in effect, whichever
// is more, each with the pool in effect or, while a cut of it may not
// have reached every pod, the pool before the cut; plus the health pool.
// A member that stops reporting keeps the worst case its status last
// showed, for as long as it has pods.
func WorstCaseOf(ts *pacerv1.TunedService, pods int32, now time.Time) (worst int64, perPod int64) {
	e := ts.Status.Effective
	if e == nil {
		// Nothing rendered yet: pods (if any) run what the spec says.
		perPod = tuning.PodConnections(ts.Spec.Database.Pool.MaxConns)
		return int64(pods) * perPod, perPod
	}
	pool := max(e.PoolMaxConns, heldPool(ts, now))
	perPod = tuning.PodConnections(pool)
	return tuning.WorstCaseConnections(max(pods, e.Replicas), pool), perPod
}

// heldPool is the pool size the newest applied cut replaced, while the
// pods may still hold it: until a trusted window that started after the
// cut (every pod on the new config), and at most configDelivery.
func heldPool(ts *pacerv1.TunedService, now time.Time) int32 {
	for _, d := range ts.Status.History {
		if !d.Applied {
			continue
		}
		for _, c := range d.Changes {
			if c.Setting != tuning.SettingPool {
				continue
			}
			if c.From <= c.To || now.Sub(d.Time.Time) >= configDelivery {
				return 0
			}
			if o := ts.Status.LastObservation; o != nil && o.Sufficient &&
				!o.Time.Add(-o.Window.Duration).Before(d.Time.Time) {
				return 0
			}
			return c.From
		}
	}
	return 0
}
