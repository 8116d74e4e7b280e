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
// settings in effect (held). Added pods beyond that are capped at what
// fits at the old pool, a raised pool at what fits over the old replicas;
// the rest follows in a later step, once a window shows every pod on the
// new config. Cuts are never held back.
func (p params) fitRollout(cur pacerv1.Settings, held Rollout, next *pacerv1.Settings, reasons map[string]string) string {
	B := int64(p.budget)
	if B <= 0 || next.Replicas <= 0 || next.PoolMaxConns <= 0 {
		return ""
	}
	oldR, oldP := max(cur.Replicas, held.Replicas), max(cur.PoolMaxConns, held.PoolMaxConns)
	T := int64(held.Terminating)
	var note string
	// The pods that may hold connections: the replicas the last change
	// may not have removed yet (oldR), or the new replicas with the pods
	// still terminating, whichever is more.
	if r := next.Replicas; r > cur.Replicas && WorstCaseConnections(max(oldR, r+int32(T)), oldP) > B {
		fit := max(cur.Replicas, int32(min(max(B/PodConnections(oldP)-T, 0), int64(r))))
		next.Replicas = fit
		staged := fmt.Sprintf("%s now, more once every pod runs pool %d (connection budget %d: until then running pods may keep pool %d%s, and %d × %d > %d)",
			arrow(SettingReplicas, cur.Replicas, fit), next.PoolMaxConns, B, oldP, terminatingText(T), int64(r)+T, PodConnections(oldP), B)
		if fit == cur.Replicas {
			delete(reasons, SettingReplicas)
			note = fmt.Sprintf("replicas stay at %d until every pod runs pool %d, then go toward %d (connection budget %d: until then running pods may keep pool %d%s)",
				cur.Replicas, next.PoolMaxConns, r, B, oldP, terminatingText(T))
		} else {
			reasons[SettingReplicas] = stage(reasons[SettingReplicas], SettingReplicas, cur.Replicas, r, staged)
		}
	}
	if pl := next.PoolMaxConns; pl > oldP && WorstCaseConnections(max(oldR, next.Replicas+held.Terminating), pl) > B {
		pods := max(oldR, next.Replicas+held.Terminating)
		fit := max(cur.PoolMaxConns, int32(min(B/int64(pods)-HealthPoolConns, int64(pl))))
		next.PoolMaxConns = fit
		staged := fmt.Sprintf("%s now, more once the pods being removed have gone (connection budget %d: until then %d pods may hold connections, and %d × %d > %d)",
			arrow(SettingPool, cur.PoolMaxConns, fit), B, pods, pods, PodConnections(pl), B)
		if fit == cur.PoolMaxConns {
			delete(reasons, SettingPool)
			note = joinNotes([]string{note, fmt.Sprintf("poolMaxConns stays at %d until the pods being removed have gone, then goes toward %d (connection budget %d: until then %d pods may hold connections)",
				cur.PoolMaxConns, pl, B, pods)})
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

// terminatingText names the terminating pods a rollout fit counts.
func terminatingText(t int64) string {
	if t <= 0 {
		return ""
	}
	return fmt.Sprintf(" and %d terminating pods keep theirs", t)
}
