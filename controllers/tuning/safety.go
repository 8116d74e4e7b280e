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

// rec is one rule's recommendation for one window: the value it wants and
// why (the reason of a change, or why it holds when to equals the value in
// effect).
type rec struct {
	to     int32
	reason string
	// urgent marks a change that answers a violated objective: a workers
	// cut while saturated skips the scale-down window; a scale-up in
	// panic mode goes up to the panic window's figure (at most 4×) in one step.
	urgent bool
}

// knob describes one tuned setting for settle.
type knob struct {
	name    string
	bounds  *pacerv1.Int32Range
	current int32
	// recs[i] is the recommendation from windows[i:]; recs[0] is the
	// latest. Computed lazily: stabilization looks back only as needed.
	recs func(i int) rec
	ws   []Window
}

// outcome is what settle decided for one setting.
type outcome struct {
	to     int32
	reason string // reason of the change (to != current)
	note   string // why it holds (to == current), for the summary
}

// settle runs one setting's recommendation through the safety rules:
// untuned settings stay, out-of-bounds values come back, cooldown, the
// stabilization windows, one step per interval, bounds.
func (p params) settle(in Input, k knob) outcome {
	cur := k.current
	hold := func(note string) outcome { return outcome{to: cur, note: note} }
	if k.bounds == nil {
		return hold("")
	}
	if lo, hi := k.bounds.Min, k.bounds.Max; cur < lo || cur > hi {
		if userSet(in.History, k.name) {
			return hold(fmt.Sprintf("%s %d was set by the user outside tuning.bounds.%s [%d, %d]: the user's edit wins", k.name, cur, boundsField(k.name), lo, hi))
		}
		to := clamp(cur, k.bounds)
		return outcome{to: to, reason: fmt.Sprintf("%s is outside tuning.bounds.%s [%d, %d]: %s",
			k.name, boundsField(k.name), lo, hi, arrow(k.name, cur, to))}
	}
	if t, _, ok := lastApplied(in.History, k.name); ok {
		if in.Now.Sub(t) < p.interval || in.Window.Start.Before(t) {
			return hold(fmt.Sprintf("%s changed %s ago: waiting for a full window after it", k.name, ms(in.Now.Sub(t))))
		}
	}
	r0 := k.recs(0)
	want := clamp(r0.to, k.bounds)
	t := tunable(k.name)
	boundCause := func() string {
		if r0.to > want {
			return fmt.Sprintf("capped by tuning.bounds.%s.max", boundsField(k.name))
		}
		return fmt.Sprintf("held up by tuning.bounds.%s.min", boundsField(k.name))
	}
	switch {
	case want == cur:
		if r0.to != cur {
			return hold(fmt.Sprintf("%s at its bound %d (the metrics ask for %d)", k.name, cur, r0.to))
		}
		return hold(r0.reason)
	case want > cur:
		// Scale-up stabilization: apply the lowest recommendation of the
		// window, so a rise must hold for all of it.
		lowest := want
		for i := 1; i < len(k.ws) && in.Now.Sub(k.ws[i].End) < p.up; i++ {
			lowest = min(lowest, clamp(k.recs(i).to, k.bounds))
		}
		if lowest <= cur {
			return hold(fmt.Sprintf("%s: a rise to %d has not held for the %s scale-up window", k.name, want, ms(p.up)))
		}
		limit := t.StepUp(cur)
		if r0.urgent {
			limit = max(limit, min(want, 4*cur))
		}
		to := min(lowest, limit)
		cause := ""
		switch {
		case to < lowest:
			cause = fmt.Sprintf("capped by the step limit of %s per interval; up to %d later", stepUpText(k.name), lowest)
		case lowest < want:
			cause = fmt.Sprintf("the lowest recommendation of the %s scale-up window", ms(p.up))
		case want != r0.to:
			cause = boundCause()
		}
		return outcome{to: to, reason: restate(r0.reason, k.name, cur, r0.to, to, cause)}
	default:
		// Scale-down stabilization: apply the highest recommendation of
		// the window, which must reach back over all of it.
		if r0.urgent {
			to := max(want, t.StepDown(cur))
			cause := ""
			if to > want {
				cause = fmt.Sprintf("capped by the step limit of one interval; down to %d later", want)
			} else if want != r0.to {
				cause = boundCause()
			}
			return outcome{to: to, reason: restate(r0.reason, k.name, cur, r0.to, to, cause)}
		}
		if p.down > 0 {
			oldest := k.ws[len(k.ws)-1]
			if in.Now.Sub(oldest.Start) < p.down {
				return hold(fmt.Sprintf("%s: a fall to %d has held %s of the %s scale-down window",
					k.name, want, ms(in.Now.Sub(oldest.Start)), ms(p.down)))
			}
		}
		highest := want
		// Increases applied within the window count as recommendations
		// too (the HPA keeps the recommendations it acted on).
		for _, d := range in.History {
			if !d.Applied || in.Now.Sub(d.Time.Time) >= p.down {
				continue
			}
			for _, c := range d.Changes {
				if c.Setting == k.name && c.To > c.From {
					highest = max(highest, clamp(c.To, k.bounds))
				}
			}
		}
		if highest >= cur {
			return hold(fmt.Sprintf("%s: a fall to %d has not held for the %s scale-down window", k.name, want, ms(p.down)))
		}
		for i := 1; i < len(k.ws) && in.Now.Sub(k.ws[i].End) < p.down; i++ {
			highest = max(highest, clamp(k.recs(i).to, k.bounds))
			if highest >= cur {
				return hold(fmt.Sprintf("%s: a fall to %d has not held for the %s scale-down window", k.name, want, ms(p.down)))
			}
		}
		to := max(highest, t.StepDown(cur))
		cause := ""
		switch {
		case to > highest:
			cause = fmt.Sprintf("capped by the step limit of one interval; down to %d later", highest)
		case highest > want:
			cause = fmt.Sprintf("the highest recommendation of the %s scale-down window", ms(p.down))
		case want != r0.to:
			cause = boundCause()
		}
		return outcome{to: to, reason: restate(r0.reason, k.name, cur, r0.to, to, cause)}
	}
}

// restate makes a rule's reason name the value applied: its "name cur →
// want" becomes "name cur → to (wanted want, cause)".
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
