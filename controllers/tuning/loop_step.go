package tuning

import (
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// horizon is how far back the loop keeps windows: every look-back of the
// model (the knee of a pod without a CPU limit, the violation memory, the
// fit, the trend, both stabilization windows), plus one interval so the
// oldest window starts before it.
func (p params) horizon() time.Duration {
	return max(knee, violationMemory, fitWindow, trendWindow, 4*p.interval, p.up, p.down) + p.interval
}

// remember keeps w among the recent windows and drops those past the horizon.
func (l *Loop) remember(w Window, p params) {
	ws := []Window{w}
	for _, old := range l.windows {
		if old.End.Before(w.End) && w.End.Sub(old.End) <= p.horizon() {
			ws = append(ws, old)
		}
	}
	l.windows = ws
}

func (l *Loop) step(tk Tick, cur pacerv1.Settings) Result {
	spec := tk.Spec
	in := Input{
		Now: tk.Now, Tuning: spec.Tuning, MaxTotalConnections: spec.MaxTotalConnections,
		Current: cur, History: l.history, PodCPU: spec.PodCPULimit,
	}
	p := resolve(in)
	if w := tk.Window; w != nil && w.Sufficient {
		l.remember(*w, p)
	}
	l.terminating = max(tk.Terminating, 0)
	l.sawPools(tk.Window)
	if l.terminating == 0 {
		// Pods still terminating keep their connections (and maybe an
		// older pool): the rollout is not over while they are there.
		l.rolledOut(tk.Window)
	}
	in.Rollout = l.rollout()
	// The pool in effect reaches pods added now only if it was rendered
	// already: put in effect before the last step's pass.
	in.Rollout.FreshPool = !l.poolAt.After(l.stepped)
	l.stepped = tk.Now
	res := Result{Settings: cur}
	rule := modes[l.mode]
	if rule.frozen {
		res.Condition = Condition{metav1.ConditionTrue, "Held",
			"tuning.mode is Hold: the settings in effect are frozen (" + settingsList(cur) + ")"}
		return res
	}
	waiting := ""
	if rule.returns {
		var d *pacerv1.Decision
		if d, waiting = l.stepBack(tk.Now, spec, p); d != nil {
			next := res.Settings
			for _, c := range d.Changes {
				set(&next, c.Setting, c.To)
			}
			l.changeTo(tk.Now, next)
			res.Settings, res.Decision = l.settings, d
			l.record(*d)
			res.Condition = Condition{metav1.ConditionTrue, "ReturningToSpec",
				fmt.Sprintf("tuning.mode is %s: returning to the spec's settings: %s", l.mode, changeList(d.Changes))}
			return res
		}
	}
	if rule.decides {
		res = l.decide(tk, in, p, res, rule)
	} else {
		res.Condition = Condition{metav1.ConditionFalse, "TuningDisabled", "tuning.mode is Disabled: the spec is rendered as written"}
	}
	if waiting != "" && (res.Decision == nil || !res.Decision.Applied) {
		// Not back at the spec and no step now: say what the way back
		// waits for, whatever else the window says.
		res.Condition = Condition{metav1.ConditionTrue, "ReturningToSpec",
			fmt.Sprintf("tuning.mode is %s: returning to the spec's settings (%s in effect): %s", l.mode, settingsList(l.settings), waiting)}
	}
	return res
}

// modeRule is what a mode does with a window.
type modeRule struct {
	// frozen keeps the settings in effect whatever the metrics say.
	frozen bool
	// returns steps the settings the tuner moved back toward the spec's.
	returns bool
	// decides judges the window and computes a decision; applies puts it
	// in effect (else it is only recommended).
	decides, applies bool
}

// modes is the one table of what each mode observes, applies and returns to.
var modes = map[pacerv1.TuningMode]modeRule{
	pacerv1.TuningAuto:      {decides: true, applies: true},
	pacerv1.TuningRecommend: {returns: true, decides: true},
	pacerv1.TuningHold:      {frozen: true},
	pacerv1.TuningDisabled:  {returns: true},
}

// decide judges the tick's window, puts the decision in effect when the
// mode applies it, and sets the condition. Once per interval it decides;
// a window between two decisions feeds the model and acts only when the
// decision is urgent, else the condition stays the last decision's.
func (l *Loop) decide(tk Tick, in Input, p params, res Result, rule modeRule) Result {
	if tk.Window == nil {
		res.Condition = tk.NoWindow
		if res.Condition.Reason == "" {
			res.Condition = Condition{metav1.ConditionUnknown, "AwaitingMetrics", "waiting for a metrics window"}
		}
		return res
	}
	in.Window = *tk.Window
	in.Recent = l.windows
	in.Staged = l.staged
	d := Decide(in)
	changed := len(d.Changes) > 0
	// Due: an interval since the last decision, give or take half a
	// window (an observer's windows do not end on the second).
	due := l.decided.IsZero() || tk.Now.Sub(l.decided) >= p.interval-ObservePeriod(p.interval)/2
	urgent := changed && d.Urgent
	if !due && !urgent && l.condition.Reason != "" {
		res.Condition = l.condition
		return res
	}
	res.Judged = true
	if rule.applies && d.Staged != d.Settings {
		s := d.Staged
		l.staged = &s
	} else {
		l.staged = nil
	}
	res.DatabaseBound, res.Limited = d.DatabaseBound != "", d.Limited != ""
	rec := &pacerv1.Recommendation{Time: metav1.NewTime(tk.Now), Settings: d.Settings, Changes: d.Changes}
	if tk.Window.Sufficient || changed {
		// A decision on a trusted window: the next waits an interval. An
		// untrusted one leaves the next window due, so the loop acts as
		// soon as it can see again (after a rollout, say); it recommends
		// nothing new (and an idle service's status is not rewritten).
		l.decided = tk.Now
		res.Recommendation = rec
	}
	switch {
	case rule.applies && changed:
		dec := pacerv1.Decision{Time: rec.Time, Mode: l.mode, Applied: true, Changes: d.Changes}
		l.changeTo(tk.Now, d.Settings)
		res.Settings, res.Decision = d.Settings, &dec
		l.record(dec)
		res.Condition = Condition{metav1.ConditionTrue, "Applied", d.Summary}
	case changed:
		// A recommendation lands in history once, not every interval it stands.
		if l.lastRec == nil || *l.lastRec != d.Settings {
			dec := pacerv1.Decision{Time: rec.Time, Mode: l.mode, Applied: false, Changes: d.Changes}
			res.Decision = &dec
			l.record(dec)
			s := d.Settings
			l.lastRec = &s
		}
		res.Condition = Condition{metav1.ConditionFalse, "Recommending", d.Summary}
	case !tk.Window.Sufficient:
		res.Condition = Condition{metav1.ConditionUnknown, "InsufficientMetrics", tk.Window.Reason}
	case res.DatabaseBound:
		res.Condition = Condition{metav1.ConditionTrue, "DatabaseBound", d.Summary + "; " + d.DatabaseBound}
	case res.Limited:
		res.Condition = Condition{metav1.ConditionTrue, "Limited", d.Summary + "; " + d.Limited}
	default:
		res.Condition = Condition{metav1.ConditionTrue, "Holding", d.Summary}
	}
	l.condition = res.Condition
	return res
}

// stepBack moves the settings the tuner had moved one step toward the
// spec's values, once per interval; a step down waits for the scale-down
// window after leaving Auto. It returns nil when nothing moves, and then,
// while the settings are not back at the spec, what the way back waits for.
func (l *Loop) stepBack(now time.Time, spec Spec, p params) (*pacerv1.Decision, string) {
	if l.settings == spec.Settings {
		return nil, ""
	}
	if !l.returned.IsZero() && now.Sub(l.returned) < p.interval {
		return nil, fmt.Sprintf("the next step in %s (one per interval)", ms(p.interval-now.Sub(l.returned)))
	}
	var waits []string
	var changes []pacerv1.Change
	for _, t := range Tunables {
		cur, want := t.Get(l.settings), t.Get(spec.Settings)
		to := cur
		var why string
		switch {
		case want > cur:
			to = min(want, t.StepUp(cur))
		case want < cur:
			if waited := now.Sub(l.leftAuto); waited < p.down {
				waits = append(waits, fmt.Sprintf("%s %d → %d waits for the %s scale-down window (%s left)", t.Name, cur, want, ms(p.down), ms(p.down-waited)))
				continue
			}
			to = max(want, t.StepDown(cur))
		}
		if to == cur {
			continue
		}
		if to != want {
			why = fmt.Sprintf(" (one step; %d later)", want)
		}
		changes = append(changes, pacerv1.Change{Setting: t.Name, From: cur, To: to, Source: pacerv1.ChangeToSpec,
			Reason: fmt.Sprintf("tuning.mode is %s: back toward the spec's %s %d: %s%s", l.mode, t.Name, want, arrow(t.Name, cur, to), why)})
	}
	// The way back keeps to the connection budget, settled and while it
	// rolls out, as the tuner's own steps do: a pool raise waits for the
	// replicas to come down.
	next, reasons := l.settings, map[string]string{}
	for _, c := range changes {
		set(&next, c.Setting, c.To)
		reasons[c.Setting] = c.Reason
	}
	if note := p.fitBudget(l.settings, l.rollout(), &next, reasons); note != "" {
		waits = append(waits, note)
	}
	for _, c := range changes {
		if get(next, c.Setting) == c.From {
			waits = append(waits, fmt.Sprintf("%s waits on the connection budget %d (%d replicas × %d connections now, and what a rollout may still hold)",
				arrow(c.Setting, c.From, c.To), p.budget, l.settings.Replicas, l.settings.PoolMaxConns))
		}
	}
	changes = changes[:0]
	for _, t := range Tunables {
		if from, to := t.Get(l.settings), t.Get(next); from != to {
			src := pacerv1.ChangeToSpec
			if from > to && to < t.Get(spec.Settings) {
				src = pacerv1.ChangeByBudget
			}
			changes = append(changes, pacerv1.Change{Setting: t.Name, From: from, To: to, Reason: reasons[t.Name], Source: src})
		}
	}
	if len(changes) == 0 {
		if len(waits) == 0 {
			waits = append(waits, "no step fits now")
		}
		return nil, "waiting: " + strings.Join(waits, "; ")
	}
	l.returned = now
	return &pacerv1.Decision{Time: metav1.NewTime(now), Mode: l.mode, Applied: true, Changes: changes}, ""
}

// settingsList formats the tuned settings in effect: "replicas 4, maxInFlight 16, …".
func settingsList(s pacerv1.Settings) string {
	out := ""
	for i, t := range Tunables {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", t.Name, t.Get(s))
	}
	return out
}
