package tuning

import (
	"fmt"
	"slices"
	"strings"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Decide returns the settings to run with and one reason per change. It is
// pure: the same Input gives the same Decision.
//
// It holds everything when tuning is Disabled or the window cannot be
// trusted; reverts the last applied decision when it made p99 worse at the
// same load; otherwise it runs four stages:
//
//  1. model: fit the demand and the costs of a request (fit);
//  2. propose: plan the whole target at once, replicas, workers, pool and
//     cache, for the least pods that keep the CPU and the pool under their
//     targets inside the bounds and the budget (propose, plan);
//  3. settle: keep each change to its bounds, its cooldown and its step,
//     scale-downs to the scale-down window (settle);
//  4. fit the budget, then explain (fitBudget, finish).
func Decide(in Input) Decision {
	p := resolve(in)
	if !modes[ModeOf(in.Tuning.Mode)].decides && !modes[ModeOf(in.Tuning.Mode)].frozen {
		return Decision{Settings: in.Current, Summary: fmt.Sprintf("tuning.mode is %s: nothing is tuned", in.Tuning.Mode)}
	}
	if why := p.holdAll(in); why != "" {
		// Bounds and the budget need no metrics: they are kept even now.
		next, reasons := p.intoBounds(in.Current, in.History)
		staged := p.resume(in, &next, reasons)
		note := p.fitBudget(in.Current, in.Rollout, &next, reasons)
		d := p.finish(in, next, reasons, []string{note}, staged)
		if len(staged) > 0 {
			d.Staged = *in.Staged // not reached yet: the plan stands
		}
		d.Urgent = true
		resumed := slices.ContainsFunc(d.Changes, func(c pacerv1.Change) bool { _, ok := staged[c.Setting]; return ok })
		switch {
		case resumed:
			d.Summary = "Continuing the last decision as the connection budget makes room: " + changeList(d.Changes) + " (" + why + ")"
		case len(d.Changes) > 0:
			d.Summary = "Holding: " + why + "; keeping bounds and budget: " + changeList(d.Changes)
		default:
			d.Summary = "Holding: " + why
		}
		return d
	}
	ws := windows(in)
	if next, reasons, ok := p.revert(in, ws); ok {
		note := p.fitBudget(in.Current, in.Rollout, &next, reasons)
		src := map[string]pacerv1.ChangeSource{}
		for name := range reasons {
			src[name] = pacerv1.ChangeByRevert
		}
		d := p.finish(in, next, reasons, []string{note}, src)
		d.Urgent = true
		return d
	}

	m := p.fit(ws)
	pr := p.propose(in, ws, m)
	next, reasons, notes := p.settleAll(in, ws, pr)
	notes = append(notes, p.fitSettled(in.Current, &next, reasons))
	staged := next
	notes = append(notes, p.fitRollout(in.Current, in.Rollout, &next, reasons))
	src := map[string]pacerv1.ChangeSource{}
	for _, t := range Tunables {
		if _, ok := pr.want[t.Name]; ok {
			src[t.Name] = pacerv1.ChangeByTuner
		}
	}
	if pr.room {
		src[SettingPool] = pacerv1.ChangeByBudget // a cut that makes room for the planned pods
	}
	d := p.finish(in, next, reasons, notes, src)
	d.Staged = staged
	d.Urgent = pr.urgent
	if pr.databaseBound != "" {
		d.DatabaseBound = pr.databaseBound
		if len(d.Changes) > 0 {
			d.Summary += "; " + pr.databaseBound
		}
	} else if pr.limited != "" {
		d.Limited = pr.limited
		if len(d.Changes) > 0 {
			d.Summary += "; " + pr.limited
		}
	}
	return d
}

// resume moves next's replicas and pool up to what an earlier decision
// staged, for fitBudget to keep to what the pods seen switching make room
// for: the plan stands while the rollout it waits on makes the window
// untrusted. It returns the settings it moved, as the tuner's.
func (p params) resume(in Input, next *pacerv1.Settings, reasons map[string]string) map[string]pacerv1.ChangeSource {
	src := map[string]pacerv1.ChangeSource{}
	if in.Staged == nil || !in.Rollout.underway() {
		// Nothing staged, or no rollout under way: what makes the window
		// untrusted is not the rollout the plan waits on.
		return src
	}
	for _, name := range []string{SettingReplicas, SettingPool} {
		from, want := get(*next, name), clamp(get(*in.Staged, name), p.boundsOf(name))
		if want <= from || get(in.Current, name) != from {
			continue
		}
		set(next, name, want)
		src[name] = pacerv1.ChangeByTuner
		reasons[name] = fmt.Sprintf("the last decision's plan, held back by the connection budget until pods switch pools (%d of %d run pool %d now): %s",
			seenOn(in.Rollout.Switched, in.Current.PoolMaxConns), in.Current.Replicas, in.Current.PoolMaxConns, arrow(name, from, want))
	}
	return src
}

// finish lists the changes in a fixed order and writes the summary. A
// change nobody proposed is the budget's.
func (p params) finish(in Input, next pacerv1.Settings, reasons map[string]string, notes []string, src map[string]pacerv1.ChangeSource) Decision {
	d := Decision{Settings: next, Staged: next}
	for _, t := range Tunables {
		name := t.Name
		from, to := get(in.Current, name), get(next, name)
		if from == to {
			continue
		}
		r := reasons[name]
		if r == "" {
			r = arrow(name, from, to)
		}
		s, ok := src[name]
		if !ok {
			s = pacerv1.ChangeByBudget
		}
		d.Changes = append(d.Changes, pacerv1.Change{Setting: name, From: from, To: to, Reason: r, Source: s})
	}
	w := in.Window
	status := fmt.Sprintf("%s (objective %s) at %s req/s on %d pods", p.p99(w), ms(p.objective), num(w.RequestRate), w.Pods)
	if len(d.Changes) > 0 {
		verb := "Tuning"
		if d.Changes[0].Source == pacerv1.ChangeByRevert {
			verb = "Reverting"
		}
		d.Summary = fmt.Sprintf("%s %s: %s", verb, changeList(d.Changes), status)
		return d
	}
	n := joinNotes(notes)
	if n == "" {
		n = "every tuned setting fits the metrics"
	}
	d.Summary = fmt.Sprintf("Holding: %s; %s", status, n)
	return d
}

// changeList formats changes as "replicas 4 → 8, poolMaxConns 16 → 10".
func changeList(cs []pacerv1.Change) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = arrow(c.Setting, c.From, c.To)
	}
	return strings.Join(parts, ", ")
}

// intoBounds brings every tuned setting that is outside its bounds back
// inside them.
func (p params) intoBounds(cur pacerv1.Settings, history []pacerv1.Decision) (pacerv1.Settings, map[string]string) {
	next, reasons := cur, map[string]string{}
	for _, t := range Tunables {
		name := t.Name
		b := p.boundsOf(name)
		v := get(cur, name)
		if b == nil || (v >= b.Min && v <= b.Max) || userSet(history, name) {
			continue
		}
		to := clamp(v, b)
		set(&next, name, to)
		reasons[name] = fmt.Sprintf("%s is outside tuning.bounds.%s [%d, %d]: %s", name, boundsField(name), b.Min, b.Max, arrow(name, v, to))
	}
	return next, reasons
}
