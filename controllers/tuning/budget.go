package tuning

import (
	"fmt"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// fitBudget keeps replicas × poolMaxConns within the database's connection
// budget. A pool growth that does not fit is capped; then pools shrink
// first (within their bounds); then replicas are capped. Each change it
// makes or limits says so in its reason. It returns a note when the budget
// cannot be met because the settings that would have to move are not tuned.
func (p params) fitBudget(cur pacerv1.Settings, next *pacerv1.Settings, reasons map[string]string) string {
	B := p.budget
	over := func() bool { return B > 0 && int64(next.Replicas)*int64(next.PoolMaxConns) > int64(B) }
	if !over() || next.Replicas <= 0 || next.PoolMaxConns <= 0 {
		return ""
	}
	if next.PoolMaxConns > cur.PoolMaxConns {
		want := next.PoolMaxConns
		capped := max(cur.PoolMaxConns, B/next.Replicas)
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
		fit := max(B/next.Replicas, b.Min)
		if fit < next.PoolMaxConns {
			reasons[SettingPool] = fmt.Sprintf("connection budget %d over %d replicas leaves %d per pod: %s",
				B, next.Replicas, B/next.Replicas, arrow(SettingPool, cur.PoolMaxConns, fit))
			next.PoolMaxConns = fit
		}
		if !over() {
			return ""
		}
	}
	if b := p.bounds.Replicas; b != nil {
		fit := max(B/next.PoolMaxConns, b.Min)
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
		next.PoolMaxConns = max(cur.PoolMaxConns, B/next.Replicas)
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
