package tuning

import (
	"fmt"
	"math"
	"strings"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// holdAll says why no setting may change at all, or "" when the window may
// be acted on.
func (p params) holdAll(in Input) string {
	w := in.Window
	switch {
	case !w.Sufficient:
		if w.Reason != "" {
			return "the latest window is insufficient: " + w.Reason
		}
		return "the latest window is insufficient"
	case w.End.IsZero() || w.End.After(in.Now):
		return "the latest window has no valid end time"
	case in.Now.Sub(w.End) > staleAfter*p.interval:
		return fmt.Sprintf("the latest window ended %s ago, more than %d intervals", ms(in.Now.Sub(w.End)), staleAfter)
	case w.Pods <= 0 || in.Current.Replicas <= 0:
		return "no pods are running"
	case w.WorkerLimit > 0 && int32(w.WorkerLimit) != in.Current.MaxInFlight:
		return fmt.Sprintf("pods still run maxInFlight %d, not %d", w.WorkerLimit, in.Current.MaxInFlight)
	case w.PoolMaxConns > 0 && int32(w.PoolMaxConns) != in.Current.PoolMaxConns:
		return fmt.Sprintf("pods still run poolMaxConns %d, not %d", w.PoolMaxConns, in.Current.PoolMaxConns)
	}
	return ""
}

func clamp(v int32, b *pacerv1.Int32Range) int32 {
	if b == nil {
		return v
	}
	return min(max(v, b.Min), b.Max)
}

// ceil32 rounds a positive float up to an int32, saturating.
func ceil32(f float64) int32 {
	if f <= 0 || math.IsNaN(f) {
		return 0
	}
	if f >= math.MaxInt32 {
		return math.MaxInt32
	}
	return int32(math.Ceil(f - 1e-9))
}

// restate makes a proposal's reason name the value applied: its "name cur
// → want" becomes "name cur → to (wanted want, cause)".
func restate(reason, name string, cur, want, to int32, cause string) string {
	if to == want || cause == "" {
		return reason
	}
	repl := arrow(name, cur, to) + fmt.Sprintf(" (wanted %d, %s)", want, cause)
	if old := arrow(name, cur, want); strings.Contains(reason, old) {
		return strings.Replace(reason, old, repl, 1)
	}
	return reason + ": " + repl
}

// stepUpText says how far one step up may go.
func stepUpText(name string) string {
	if name == SettingReplicas {
		return "×2 or +4"
	}
	return fmt.Sprintf("×%g", tunable(name).Up)
}
