package tuning

import (
	"fmt"
	"math"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// revert undoes the newest applied decision when the window after it shows
// p99 over the objective and at least 25% worse than the window before it,
// at a request rate within 5% of the one before (so the load did not
// change: the change did). A change made while p99 was already over the
// objective answered an incident whose course, not the change, moves p99:
// it is not reverted. Only changes that could hurt latency are
// reverted (fewer pods, a smaller cache, any change of workers or pool),
// and a cut of workers or pool only when the window after shows it full:
// a spike the cut resource did not feel is the load's, not the cut's; a
// pool cut that made room under the budget is the first half of a growth,
// judged by the pods that follow it, not alone;
// only within three intervals of the change; a
// revert is never reverted; settings since moved or no longer tuned are
// left alone. It returns the settings with the reverted values and the
// reasons, or ok false.
func (p params) revert(in Input, ws []Window) (next pacerv1.Settings, reasons map[string]string, ok bool) {
	var last *pacerv1.Decision
	for i := range in.History {
		if in.History[i].Applied {
			last = &in.History[i]
			break
		}
	}
	if last == nil || len(last.Changes) == 0 {
		return in.Current, nil, false
	}
	for _, c := range last.Changes {
		// A revert is never reverted, nor is a user's edit.
		if c.Source == pacerv1.ChangeByRevert || c.Source == pacerv1.ChangeByUser {
			return in.Current, nil, false
		}
	}
	t := last.Time.Time
	if in.Now.Sub(t) > p.interval+revertWithin {
		return in.Current, nil, false
	}
	before, after, ok := beforeAfter(ws, t)
	if !ok || before.RequestRate <= 0 {
		return in.Current, nil, false
	}
	drift := after.RequestRate/before.RequestRate - 1
	if !p.latencyKnown(before) || !p.latencyKnown(after) || before.P99 > p.objective || math.Abs(drift) > revertLoadDrift || after.P99 <= p.objective ||
		float64(after.P99) <= float64(before.P99)*revertWorseFactor {
		return in.Current, nil, false
	}
	next, reasons = in.Current, map[string]string{}
	for _, c := range last.Changes {
		if !mayHurt(c) || !p.felt(c, after) || roomCut(c) {
			continue
		}
		b := p.boundsOf(c.Setting)
		if b == nil || get(in.Current, c.Setting) != c.To {
			continue
		}
		to := clamp(c.From, b)
		if to == c.To {
			continue
		}
		set(&next, c.Setting, to)
		reasons[c.Setting] = RevertPrefix + fmt.Sprintf("p99 rose %s → %s at the same load (%s → %s req/s) after %s: back to %d",
			ms(before.P99), ms(after.P99), num(before.RequestRate), num(after.RequestRate), arrow(c.Setting, c.From, c.To), to)
	}
	return next, reasons, len(reasons) > 0
}

// mayHurt says whether a change could have made latency worse: more pods
// or a bigger cache only add capacity, so only those are never reverted.
func mayHurt(c pacerv1.Change) bool {
	switch c.Setting {
	case SettingReplicas, SettingCache:
		return c.To < c.From
	}
	return true
}

// felt says whether the window after a cut of workers or pool shows the
// cut resource full: requests queued for a worker or the workers nearly
// all busy, acquires waiting or the connections nearly all in use. Any
// other change is taken as felt.
func (p params) felt(c pacerv1.Change, after Window) bool {
	if c.To >= c.From {
		return true
	}
	switch c.Setting {
	case SettingWorkers:
		return queued(after) || full(after.InFlight, float64(c.To))
	case SettingPool:
		return after.PoolAcquireWait > p.poolWaitLimit() || full(after.PoolAcquired, float64(c.To))
	}
	return true
}
