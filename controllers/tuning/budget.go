package tuning

import (
	"fmt"
	"strings"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// fitBudget keeps the connections the pods may hold within the database's
// connection budget: replicas × poolMaxConns once the change has rolled
// out (fitSettled), and while it rolls out (fitRollout). It returns a note
// when a limit holds a setting back or the budget cannot be met.
func (p params) fitBudget(cur pacerv1.Settings, held Rollout, next *pacerv1.Settings, reasons map[string]string) string {
	note := p.fitSettled(cur, next, reasons)
	return joinNotes([]string{note, p.fitRollout(cur, held, next, reasons)})
}

// fitRollout keeps a rise within the budget while it rolls out. Until
// every pod runs the new config, running pods keep the pool they have and
// removed pods keep their connections until they terminate, so the pods
// may hold max(replicas before, after) × max(pool before, after), where
// "before" is the most either setting was since every pod last ran the
// settings in effect (held), except the pods seen since the last change
// and the pods that started on the pool in effect (rolloutConnections).
// Added pods and a raised pool are capped at what fits; the rest follows
// in a later step, as more pods are seen on the new pool or the removed
// ones go. Cuts are never held back.
func (p params) fitRollout(cur pacerv1.Settings, held Rollout, next *pacerv1.Settings, reasons map[string]string) string {
	B := int64(p.budget)
	if B <= 0 || next.Replicas <= 0 || next.PoolMaxConns <= 0 {
		return ""
	}
	oldP := max(cur.PoolMaxConns, held.PoolMaxConns)
	T := int64(held.Terminating)
	at := func(replicas, pool int32) int64 {
		s := *next
		s.Replicas, s.PoolMaxConns = replicas, pool
		return rolloutConnections(cur, held, s)
	}
	var note string
	if r := next.Replicas; r > cur.Replicas && at(r, next.PoolMaxConns) > B {
		fit := most(cur.Replicas, r, func(n int32) bool { return at(n, next.PoolMaxConns) <= B })
		need := at(r, next.PoolMaxConns)
		next.Replicas = fit
		seen := switchedText(held.Switched, cur.PoolMaxConns)
		staged := fmt.Sprintf("%s now, more as pods switch to pool %d (connection budget %d: until then running pods may keep pool %d%s%s, and %d pods would need %d)",
			arrow(SettingReplicas, cur.Replicas, fit), next.PoolMaxConns, B, oldP, terminatingText(T), seen, r, need)
		if fit == cur.Replicas {
			delete(reasons, SettingReplicas)
			note = fmt.Sprintf("replicas stay at %d until more pods run pool %d, then go toward %d (connection budget %d: until then running pods may keep pool %d%s%s)",
				cur.Replicas, next.PoolMaxConns, r, B, oldP, terminatingText(T), seen)
		} else {
			reasons[SettingReplicas] = stage(reasons[SettingReplicas], SettingReplicas, cur.Replicas, r, staged)
		}
	}
	if pl := next.PoolMaxConns; pl > cur.PoolMaxConns && at(next.Replicas, pl) > B {
		fit := most(cur.PoolMaxConns, pl, func(n int32) bool { return at(next.Replicas, n) <= B })
		need := at(next.Replicas, pl)
		next.PoolMaxConns = fit
		staged := fmt.Sprintf("%s now, more once the last change has rolled out (connection budget %d: until then the pods may hold %d connections at pool %d%s)",
			arrow(SettingPool, cur.PoolMaxConns, fit), B, need, pl, terminatingText(T))
		if fit == cur.PoolMaxConns {
			delete(reasons, SettingPool)
			note = joinNotes([]string{note, fmt.Sprintf("poolMaxConns stays at %d until the last change has rolled out, then goes toward %d (connection budget %d: until then the pods may hold %d connections at pool %d%s)",
				cur.PoolMaxConns, pl, B, need, pl, terminatingText(T))})
		} else {
			reasons[SettingPool] = stage(reasons[SettingPool], SettingPool, cur.PoolMaxConns, pl, staged)
		}
	}
	return note
}

// stage rewrites a reason's "name cur → want" as the staged step; a reason
// without it gets the staged step appended.
func stage(reason, name string, cur, want int32, staged string) string {
	if old := arrow(name, cur, want); strings.Contains(reason, old) {
		return strings.Replace(reason, old, staged, 1)
	}
	if reason == "" {
		return staged
	}
	return reason + "; " + staged
}

// fitSettled keeps replicas × poolMaxConns within the database's connection
// budget. A pool growth that does not fit is capped; then pools shrink
// first (within their bounds); then replicas are capped. Each change it
// makes or limits says so in its reason. It returns a note when the budget
// cannot be met because the settings that would have to move are not tuned.
func (p params) fitSettled(cur pacerv1.Settings, next *pacerv1.Settings, reasons map[string]string) string {
	B := p.budget
	over := func() bool { return B > 0 && WorstCaseConnections(next.Replicas, next.PoolMaxConns) > int64(B) }
	if !over() || next.Replicas <= 0 || next.PoolMaxConns <= 0 {
		return ""
	}
	if next.PoolMaxConns > cur.PoolMaxConns {
		want := next.PoolMaxConns
		capped := max(cur.PoolMaxConns, B/next.Replicas-HealthPoolConns)
		if b := p.bounds.PoolMaxConns; b != nil {
			capped = max(capped, b.Min)
		}
		next.PoolMaxConns = min(want, capped)
		if next.PoolMaxConns == cur.PoolMaxConns {
			delete(reasons, SettingPool)
		} else if next.PoolMaxConns < want {
			reasons[SettingPool] += fmt.Sprintf(" (capped at %d, not %d: %d replicas × %d ≤ budget %d)",
				next.PoolMaxConns, want, next.Replicas, next.PoolMaxConns, B)
		}
		if !over() {
			return ""
		}
	}
	if b := p.bounds.PoolMaxConns; b != nil {
		fit := max(B/next.Replicas-HealthPoolConns, b.Min)
		if fit < next.PoolMaxConns {
			reasons[SettingPool] = fmt.Sprintf("connection budget %d over %d replicas leaves %d per pod, one of them the health pool's: %s",
				B, next.Replicas, B/next.Replicas, arrow(SettingPool, cur.PoolMaxConns, fit))
			next.PoolMaxConns = fit
		}
		if !over() {
			return ""
		}
	}
	if b := p.bounds.Replicas; b != nil {
		fit := max(int32(int64(B)/PodConnections(next.PoolMaxConns)), b.Min)
		if fit < next.Replicas {
			wanted := next.Replicas
			next.Replicas = fit
			r := reasons[SettingReplicas]
			if r == "" || fit <= cur.Replicas {
				r = fmt.Sprintf("%d replicas × %d connections would exceed the connection budget %d", wanted, next.PoolMaxConns, B)
			}
			reasons[SettingReplicas] = r + fmt.Sprintf(" (capped at %d replicas by the connection budget %d at %d connections per pod)", fit, B, next.PoolMaxConns)
			if next.Replicas == cur.Replicas {
				delete(reasons, SettingReplicas)
			}
		}
		if !over() {
			return ""
		}
	}
	if next.PoolMaxConns > cur.PoolMaxConns {
		// Raising the pool (into its bounds) cannot fit: raise it only as
		// far as the budget allows.
		next.PoolMaxConns = max(cur.PoolMaxConns, B/next.Replicas-HealthPoolConns)
		if next.PoolMaxConns == cur.PoolMaxConns {
			delete(reasons, SettingPool)
		} else {
			reasons[SettingPool] = fmt.Sprintf("poolMaxConns raised toward its bounds only as far as the connection budget %d allows over %d replicas: %s",
				B, next.Replicas, arrow(SettingPool, cur.PoolMaxConns, next.PoolMaxConns))
		}
		if !over() {
			return fmt.Sprintf("poolMaxConns stays below its bounds: %d replicas × more connections would exceed the connection budget %d", next.Replicas, B)
		}
	}
	return fmt.Sprintf("replicas %d × poolMaxConns %d exceeds the connection budget %d and the settings that could fix it are not tuned",
		next.Replicas, next.PoolMaxConns, B)
}

// most is the largest n in (from, to] for which fits holds of every value
// up to it, or from when fits(from+1) does not.
func most(from, to int32, fits func(int32) bool) int32 {
	n := from
	for n < to && fits(n+1) {
		n++
	}
	return n
}

// rolloutConnections is the most connections the pods may hold while the
// settings go from cur to next before the last change has rolled out:
// every pod there may be (the replicas before or after, with the pods
// still terminating) at the biggest pool since the last full rollout or
// in next, except the pods seen since the last change (each at the larger
// of the pool it reported and the pools of cur and next) and the pods
// that started on the pool in effect (held.Fresh, and the pods next adds
// when held.FreshPool and next keeps the pool), at the larger of cur's
// and next's pools.
func rolloutConnections(cur pacerv1.Settings, held Rollout, next pacerv1.Settings) int64 {
	latest := max(cur.PoolMaxConns, next.PoolMaxConns)
	oldR, oldP := max(cur.Replicas, held.Replicas), max(latest, held.PoolMaxConns)
	T := int64(held.Terminating)
	pods := int64(max(oldR, next.Replicas+held.Terminating))
	var seen, seenNew, conns int64
	for pool, n := range held.Switched {
		seen += int64(n)
		if pool <= cur.PoolMaxConns {
			seenNew += int64(n)
		}
		conns += int64(n) * PodConnections(max(pool, latest))
	}
	// A fresh pod already seen is among seenNew: count only the rest.
	fresh := max(int64(held.Fresh)-seenNew, 0)
	if held.FreshPool && next.PoolMaxConns == cur.PoolMaxConns {
		fresh += int64(max(next.Replicas-cur.Replicas, 0))
	}
	fresh = min(fresh, max(pods-seen-T, 0))
	conns += fresh * PodConnections(latest)
	return conns + max(pods-seen-fresh, T)*PodConnections(oldP)
}

// switchedText names the pods a rollout fit saw switched to the pool in effect.
func switchedText(seen map[int32]int32, pool int32) string {
	if n := seenOn(seen, pool); n > 0 {
		return fmt.Sprintf("; %d already run pool %d or less", n, pool)
	}
	return ""
}

// seenOn counts the pods seen running pool connections or fewer.
func seenOn(seen map[int32]int32, pool int32) int32 {
	var n int32
	for q, k := range seen {
		if q <= pool {
			n += k
		}
	}
	return n
}

// terminatingText names the terminating pods a rollout fit counts.
func terminatingText(t int64) string {
	if t <= 0 {
		return ""
	}
	return fmt.Sprintf(" and %d terminating pods keep theirs", t)
}
