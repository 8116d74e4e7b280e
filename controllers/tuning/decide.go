package tuning

import (
	"fmt"
	"strings"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Decide returns the settings to run with and one reason per change. It is
// pure: the same Input gives the same Decision.
//
// It holds everything when tuning is Off or the window cannot be trusted
// (insufficient, stale, or the pods still run other settings); reverts the
// last applied decision when it made p99 worse at the same load; otherwise
// it asks each rule (workers, replicas, pool, cache) for a recommendation,
// passes it through the safety rules (bounds, cooldown, stabilization, one
// step per interval) and finally keeps replicas × pool within the
// connection budget.
func Decide(in Input) Decision {
	p := resolve(in)
	if ModeOf(in.Tuning.Mode) == pacerv1.TuningDisabled {
		return Decision{Settings: in.Current, Summary: fmt.Sprintf("tuning.mode is %s: nothing is tuned", in.Tuning.Mode)}
	}
	if why := p.holdAll(in); why != "" {
		// Bounds and the budget need no metrics: they are kept even now.
		next, reasons := p.intoBounds(in.Current, in.History)
		note := p.fitBudget(in.Current, in.Rollout, &next, reasons)
		d := p.finish(in, next, reasons, []string{note})
		d.Summary = "Holding: " + why
		if len(d.Changes) > 0 {
			d.Summary += "; keeping bounds and budget: " + changeList(d.Changes)
		}
		return d
	}
	ws := windows(in)
	if next, reasons, ok := p.revert(in, ws); ok {
		note := p.fitBudget(in.Current, in.Rollout, &next, reasons)
		return p.finish(in, next, reasons, []string{note})
	}

	cur, next := in.Current, in.Current
	reasons := map[string]string{}
	var notes []string
	take := func(name string, o outcome) int32 {
		if o.to != get(cur, name) {
			reasons[name] = o.reason
		} else if o.note != "" {
			notes = append(notes, o.note)
		}
		return o.to
	}
	workersAt := func(w Window) int32 {
		if w.WorkerLimit > 0 {
			return int32(w.WorkerLimit)
		}
		return cur.MaxInFlight
	}
	poolAt := func(w Window) int32 {
		if w.PoolMaxConns > 0 {
			return int32(w.PoolMaxConns)
		}
		return cur.PoolMaxConns
	}

	next.MaxInFlight = take(SettingWorkers, p.settle(in, knob{
		name: SettingWorkers, bounds: p.bounds.Workers, current: cur.MaxInFlight, ws: ws,
		recs: func(i int) rec { return p.workersRec(ws[i:], workersAt(ws[i])) },
	}))
	next.PoolMaxConns = take(SettingPool, p.settle(in, knob{
		name: SettingPool, bounds: p.bounds.PoolMaxConns, current: cur.PoolMaxConns, ws: ws,
		recs: func(i int) rec {
			if i == 0 {
				return p.poolRec(ws, cur.PoolMaxConns, next.MaxInFlight)
			}
			return p.poolRec(ws[i:], poolAt(ws[i]), workersAt(ws[i]))
		},
	}))
	next.Replicas = take(SettingReplicas, p.settle(in, knob{
		name: SettingReplicas, bounds: p.bounds.Replicas, current: cur.Replicas, ws: ws,
		recs: func(i int) rec {
			if i == 0 {
				// Utilization is measured under the limit the pods ran
				// with; after a raise that limit no longer binds, so
				// only CPU counts (or replicas wait a window).
				w := cur.MaxInFlight
				if next.MaxInFlight > cur.MaxInFlight {
					w = 0
				}
				return p.replicasRec(ws, cur.Replicas, w, next.PoolMaxConns > cur.PoolMaxConns)
			}
			return p.replicasRec(ws[i:], int32(ws[i].Pods), workersAt(ws[i]), false)
		},
	}))
	if next.Replicas > cur.Replicas && p.over(in.Window) {
		// New pods answer a violated objective. A new pod config now would
		// leave the next windows untrusted (pods on mixed configs) for as
		// long as it takes to reach every pod, blind to whether the new
		// pods are enough: workers and pool wait for a window with them.
		for _, name := range []string{SettingWorkers, SettingPool} {
			if get(next, name) != get(cur, name) {
				notes = append(notes, fmt.Sprintf("%s waits while new pods answer the violated objective (%s)", name, arrow(name, get(cur, name), get(next, name))))
				set(&next, name, get(cur, name))
				delete(reasons, name)
			}
		}
	}
	hostile := cacheHostile(in, ws)
	if why := p.cacheWaits(in, reasons); why != "" {
		notes = append(notes, why)
	} else {
		next.CacheMaxEntries = take(SettingCache, p.settle(in, knob{
			name: SettingCache, bounds: p.bounds.CacheMaxEntries, current: cur.CacheMaxEntries, ws: ws,
			recs: func(i int) rec {
				h := ""
				if i == 0 {
					h = hostile
				}
				return p.cacheRec(ws[i:], cur.CacheMaxEntries, h)
			},
		}))
	}
	db := p.databaseBound(ws, cur.PoolMaxConns, cur.Replicas)
	if db != "" {
		// Capacity the database cannot serve is not added.
		for _, name := range []string{SettingReplicas, SettingWorkers, SettingPool} {
			if get(next, name) > get(cur, name) {
				set(&next, name, get(cur, name))
				delete(reasons, name)
			}
		}
		notes = append([]string{db}, notes...)
	}
	notes = append(notes, p.fitBudget(cur, in.Rollout, &next, reasons))
	d := p.finish(in, next, reasons, notes)
	d.DatabaseBound = db
	if db != "" && len(d.Changes) > 0 {
		d.Summary += "; " + db
	}
	return d
}

// finish lists the changes in a fixed order and writes the summary.
func (p params) finish(in Input, next pacerv1.Settings, reasons map[string]string, notes []string) Decision {
	d := Decision{Settings: next}
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
		d.Changes = append(d.Changes, pacerv1.Change{Setting: name, From: from, To: to, Reason: r})
	}
	w := in.Window
	status := fmt.Sprintf("%s (objective %s) at %s req/s on %d pods", p.p99(w), ms(p.objective), num(w.RequestRate), w.Pods)
	if len(d.Changes) > 0 {
		verb := "Tuning"
		if strings.HasPrefix(d.Changes[0].Reason, RevertPrefix) {
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
