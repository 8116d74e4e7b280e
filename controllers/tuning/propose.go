package tuning

import (
	"fmt"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// proposal is what the model wants of each tuned setting, before bounds,
// cooldowns, steps and the budget's rollout staging.
type proposal struct {
	want   map[string]int32
	reason map[string]string
	// urgent marks a proposal that answers a violated objective with a
	// resource queueing, or a panic: replicas then skip the step limit.
	urgent bool
	// direct lists the settings whose proposal skips the step limit: a
	// pool cut that makes room under the budget for the planned pods.
	direct map[string]bool
	// room is true when the pool proposal is such a cut.
	room  bool
	notes []string
	// limited and databaseBound say what keeps the objective out of reach
	// while it is missed ("" when nothing does).
	limited, databaseBound string
}

func (pr *proposal) set(name string, to int32, reason string) {
	pr.want[name], pr.reason[name] = to, reason
}

// propose plans every setting at once. Growth follows the larger of the
// stable demand, the latest window and where a significant rise will be
// one interval on; cuts follow the busiest window of the scale-down
// window. Both are widened by the fit's uncertainty, which is the
// hysteresis: a change must be needed beyond what the model can tell.
func (p params) propose(in Input, ws []Window, m model) proposal {
	cur, w := in.Current, ws[0]
	pr := proposal{want: map[string]int32{}, reason: map[string]string{}, direct: map[string]bool{}}
	over := p.over(w)
	band := tolerance + m.spread + m.noise

	// A rising load is met where it will be when the pods this decision
	// adds show in a window: two intervals on.
	up := max(m.stable, m.latest, m.latest+m.trend*2*p.interval.Seconds())
	if p.up > 0 {
		up = min(up, p.leastDemand(ws, p.up))
	}
	capacityNow := 0.0
	if m.cpu > 0 && m.cores > 0 {
		capacityNow = float64(w.Pods) * m.podRate(m.cpuTarget)
	}
	panicking := capacityNow > 0 && m.latest >= panicFactor*capacityNow
	pr.urgent = (over && p.saturated(w, m)) || panicking
	// The band widens growth's threshold by what the model cannot tell.
	need := up
	switch {
	case pr.urgent:
	case changedWithin(in, SettingPool, p.interval+revertWithin, roomCut):
		// The pool was cut to make room under the budget for more pods:
		// that was the first half of a growth, and the second, at the
		// first window after the cut's rollout, does not wait on the
		// band, or the cut stays without the pods it was for and a pool
		// raise undoes it.
	case m.latest >= m.stable:
		// Growth to the latest window's demand is a count, not an
		// estimate: the stable mean's noise is no reason to hold, and
		// across a step that noise is the step itself.
		need = up * (1 - tolerance - m.spread)
	default:
		need = up * (1 - band)
	}
	// A plan staged over a rollout is the choice in flight: the plan's
	// hysteresis (stay unless clearly better) holds to it, not to the
	// replicas it has reached so far.
	committed := cur
	if in.Staged != nil && in.Staged.Replicas > cur.Replicas {
		committed.Replicas = in.Staged.Replicas
	}
	grow, must := p.plan(m, up, committed), p.plan(m, need, committed)
	shrink := p.plan(m, m.peak*(1+band), committed)
	if over && grow.limited != "" {
		msg := fmt.Sprintf("the objective is missed and %s: %s", grow.limited, grow.describe())
		if grow.databaseBound {
			pr.databaseBound = fmt.Sprintf("database-bound: acquire wait %s with %s of %d connections in use per pod; %s",
				ms(w.PoolAcquireWait), num(w.PoolAcquired), cur.PoolMaxConns, msg)
		} else {
			pr.limited = msg
		}
	}
	covered, coverNote := p.scaleDownCovered(in, ws)
	// Cuts of the pod config wait while the objective is missed or a
	// resource queues: a rollout then blinds the tuner (windows are
	// untrusted until it reaches every pod) when it may need to act.
	calm := !p.near(w) && !p.saturated(w, m)

	// Replicas.
	R := cur.Replicas
	nextR := R
	switch {
	case p.bounds.Replicas == nil:
	case m.cpu <= 0 || m.cores <= 0:
		pr.notes = append(pr.notes, "replicas hold: no window had a CPU figure")
	case must.replicas > R:
		nextR = grow.replicas
		mode := "demand"
		if panicking {
			mode = "panic: demand"
		} else if pr.urgent {
			mode = "objective missed with a resource queueing: demand"
		}
		why := grow.describe() + " at the targets"
		if grow.limited != "" {
			why = grow.describe() + ", the most that fits: " + grow.limited
		}
		pr.set(SettingReplicas, nextR, fmt.Sprintf("%s %s; %s: %s", mode, m.describe(), why, arrow(SettingReplicas, R, nextR)))
	case shrink.replicas < R && shrink.limited != "":
		pr.notes = append(pr.notes, fmt.Sprintf("replicas stay at %d: fewer would not meet the targets (%s)", R, shrink.limited))
	case shrink.replicas < R && raisedWithin(in, SettingReplicas, p.down):
		pr.notes = append(pr.notes, fmt.Sprintf("replicas stay at %d: raised within the %s scale-down window", R, ms(p.down)))
	case shrink.replicas < R && revertedWithin(in, SettingReplicas, p.down):
		pr.notes = append(pr.notes, fmt.Sprintf("replicas stay at %d: a cut was reverted within the %s scale-down window", R, ms(p.down)))
	case shrink.replicas < R && over:
		pr.notes = append(pr.notes, fmt.Sprintf("replicas stay at %d while the objective is missed", R))
	case shrink.replicas < R && !covered:
		pr.notes = append(pr.notes, fmt.Sprintf("replicas %d → %d waits: %s", R, shrink.replicas, coverNote))
	case shrink.replicas < R:
		nextR = shrink.replicas
		pr.set(SettingReplicas, nextR, fmt.Sprintf("the busiest window of the last %s had %s req/s; %s at the targets (%s uncertainty): %s",
			ms(p.down), num(m.peak), shrink.describe(), pct(band), arrow(SettingReplicas, R, nextR)))
	case grow.limited != "" && R >= p.bounds.Replicas.Max:
		pr.notes = append(pr.notes, fmt.Sprintf("replicas at tuning.bounds.replicas.max %d: %s", R, grow.describe()))
	case R > 1:
		pr.notes = append(pr.notes, fmt.Sprintf("replicas stay at %d: %s", R, must.describe()))
	}

	// Workers and pool, for the replicas the service is headed to.
	g, _ := p.planAt(m, up, max(nextR, 1), cur)
	s, _ := p.planAt(m, m.peak*(1+band), max(nextR, 1), cur)
	p.proposePool(in, ws, m, g, s, nextR, covered && calm, &pr)
	p.proposeWorkers(in, w, m, grow, s, covered && calm, &pr)
	if nextR > R && over {
		// New pods answer a violated objective. A new pod config now
		// would leave the next windows untrusted (pods on mixed configs)
		// until it reaches every pod, blind to whether the new pods are
		// enough: raises of workers and pool wait for a window with them.
		for _, name := range []string{SettingWorkers, SettingPool} {
			if v, ok := pr.want[name]; ok && v > get(cur, name) {
				pr.notes = append(pr.notes, fmt.Sprintf("%s waits while new pods answer the violated objective (%s)", name, arrow(name, get(cur, name), v)))
				delete(pr.want, name)
			}
		}
	}
	if len(pr.want) == 0 {
		if why := p.cacheWaits(in, m, grow.databaseBound); why != "" {
			pr.notes = append(pr.notes, why)
		} else if to, reason, note := p.cacheRec(in, ws, grow.databaseBound); to > cur.CacheMaxEntries || (to < cur.CacheMaxEntries && calm) {
			pr.set(SettingCache, to, reason)
		} else if note != "" {
			pr.notes = append(pr.notes, note)
		}
	}
	return pr
}

// proposePool sizes the pool for the queries a pod will carry: it grows
// when requests wait for a connection (or the plan needs more), whatever
// the query time does, since a starved pool and a slow database are told
// apart by the model (acquire wait against query time); it is cut first
// when the planned replicas need the room under the budget; and it is cut
// when far above its need over the scale-down window.
func (p params) proposePool(in Input, ws []Window, m model, g, s plan, nextR int32, covered bool, pr *proposal) {
	cur, w := in.Current, ws[0]
	P := cur.PoolMaxConns
	if p.bounds.PoolMaxConns == nil || m.query <= 0 || P <= 0 {
		return
	}
	wait := w.PoolAcquireWait > p.poolWaitLimit()
	use := w.PoolAcquired / float64(P)
	fits := p.budget <= 0 || WorstCaseConnections(nextR, P) <= int64(p.budget)
	switch {
	case g.pool > P && (wait || use >= m.poolTarget):
		pr.set(SettingPool, g.pool, fmt.Sprintf("acquire wait %s with %s of %d connections in use per pod, queries hold one for %s: %s (%s)",
			ms(w.PoolAcquireWait), num(w.PoolAcquired), P, secs(m.query), arrow(SettingPool, P, g.pool), g.describe()))
	case !fits && g.pool < P && revertedWithin(in, SettingPool, p.down):
		pr.notes = append(pr.notes, fmt.Sprintf("%d pods would need poolMaxConns %d → %d, and a cut was reverted within the %s scale-down window", nextR, P, g.pool, ms(p.down)))
	case !fits && g.pool < P:
		pr.direct[SettingPool], pr.room = true, true
		pr.set(SettingPool, g.pool, fmt.Sprintf("%d pods need the connection budget's room first (%d × %d > %d): %s",
			nextR, nextR, PodConnections(P), p.budget, arrow(SettingPool, P, g.pool)))
	case float64(P) > slack*float64(s.pool):
		to := ceil32(room * float64(s.pool))
		switch {
		case !p.latencyKnown(w):
			pr.notes = append(pr.notes, lowDemandHold(SettingPool))
		case !covered || raisedWithin(in, SettingPool, p.down) || revertedWithin(in, SettingPool, p.down):
			pr.notes = append(pr.notes, fmt.Sprintf("poolMaxConns %d → %d waits for the %s scale-down window", P, to, ms(p.down)))
		default:
			pr.set(SettingPool, to, fmt.Sprintf("only %s of %d connections in use per pod and the busiest window of the last %s needs %d: %s (%g× that)",
				num(w.PoolAcquired), P, ms(p.down), s.pool, arrow(SettingPool, P, to), room))
		}
	}
}

// proposeWorkers raises the worker limit when it, not the CPU or the
// pool, holds requests back (the planned load would keep more in flight
// than it allows, or it is full now with requests queued), and cuts it
// when it is far above what a pod keeps in flight at the most it carries,
// which keeps a runaway overload queueing instead of crowding the CPU
// and leaves a rise above the recent load to queue at the CPU, not be
// shed, until new pods are ready.
//
// g is the growth plan (the settings the service is headed to), s the plan
// for the busiest recent load at the replicas it will have.
func (p params) proposeWorkers(in Input, w Window, m model, g, s plan, covered bool, pr *proposal) {
	W := in.Current.MaxInFlight
	if p.bounds.Workers == nil || W <= 0 {
		return
	}
	inFlight := float64(g.workers) / workerHeadroom
	cpuRoom := m.cores <= 0 || w.CPUCores < cpuSaturated*m.cores
	workersFull := full(w.InFlight, float64(W)) && queued(w) && cpuRoom
	need := p.workersAtCeiling(m, s)
	switch {
	case g.limited != "":
		// The plan cannot meet the targets: more in flight would only
		// crowd a saturated resource.
	case g.workers > W && (workersFull || inFlight > float64(W)):
		pr.set(SettingWorkers, g.workers, fmt.Sprintf("%s of %d workers busy per pod with %s queued; %s keeps %s in flight per pod (Little's law): %s",
			num(w.InFlight), W, num(w.QueueLength), g.describe(), num(inFlight), arrow(SettingWorkers, W, g.workers)))
	case float64(W) > slack*float64(need) && covered && !raisedWithin(in, SettingWorkers, p.down) && !revertedWithin(in, SettingWorkers, p.down) && p.latencyKnown(w):
		to := ceil32(room * float64(need))
		pr.set(SettingWorkers, to, fmt.Sprintf("%d workers per pod is over %g× what a pod keeps in flight at the most it carries short of saturation (%s): %s",
			W, slack*workerHeadroom, num(float64(need)/workerHeadroom), arrow(SettingWorkers, W, to)))
	}
}

// saturated says whether a pod resource queued in the window: requests
// waited for a worker slot or were shed, waited for a connection, or
// waited for the CPU.
func (p params) saturated(w Window, m model) bool {
	return queued(w) || w.PoolAcquireWait > p.poolWaitLimit() ||
		cpuQueued(w, m.ownLeast) || (m.cores > 0 && w.CPUCores >= cpuSaturated*m.cores)
}

// leastDemand is the lowest demand of the windows within d: a rise must
// hold that long (the scale-up stabilization window).
func (p params) leastDemand(ws []Window, d time.Duration) float64 {
	least := arrived(ws[0])
	for _, w := range within(ws, d) {
		least = min(least, arrived(w))
	}
	return least
}

// scaleDownCovered says whether the windows reach back over the whole
// scale-down window, so the busiest of them speaks for all of it, and
// when not, how much is missing.
func (p params) scaleDownCovered(in Input, ws []Window) (bool, string) {
	if p.down <= 0 {
		return true, ""
	}
	oldest := ws[len(ws)-1]
	if held := in.Now.Sub(oldest.Start); held < p.down {
		return false, fmt.Sprintf("%s of the %s scale-down window seen", ms(held), ms(p.down))
	}
	return true, ""
}

// raisedWithin says whether setting was raised within d: a raise counts
// as a recommendation of the scale-down window, as the HPA keeps those it
// acted on, so no cut undoes it inside the window.
func raisedWithin(in Input, setting string, d time.Duration) bool {
	return changedWithin(in, setting, d, func(c pacerv1.Change) bool { return c.To > c.From })
}

// roomCut is a pool cut made to make room under the connection budget.
func roomCut(c pacerv1.Change) bool { return c.To < c.From && c.Source == pacerv1.ChangeByBudget }

// revertedWithin says whether a change of setting was reverted within d:
// the model was wrong about it, so it is not tried again in the same
// direction until the scale-down window has passed.
func revertedWithin(in Input, setting string, d time.Duration) bool {
	return changedWithin(in, setting, d, func(c pacerv1.Change) bool { return c.Source == pacerv1.ChangeByRevert })
}

// changedWithin says whether an applied change of setting within d
// matches.
func changedWithin(in Input, setting string, d time.Duration, match func(pacerv1.Change) bool) bool {
	for _, dec := range in.History {
		if !dec.Applied || in.Now.Sub(dec.Time.Time) >= d {
			continue
		}
		for _, c := range dec.Changes {
			if c.Setting == setting && match(c) {
				return true
			}
		}
	}
	return false
}

// poolWaitLimit is the mean acquire wait above which the pool counts as
// too small.
func (p params) poolWaitLimit() time.Duration {
	return max(poolWaitFloor, time.Duration(poolWaitShare*float64(p.objective)))
}

// settleAll runs every proposal through settle and collects the changes'
// reasons and the notes of those held.
func (p params) settleAll(in Input, ws []Window, pr proposal) (pacerv1.Settings, map[string]string, []string) {
	next, reasons := in.Current, map[string]string{}
	notes := pr.notes
	for _, t := range Tunables {
		cur := t.Get(in.Current)
		want, ok := pr.want[t.Name]
		if !ok {
			want = cur
		}
		direct := pr.direct[t.Name] || (pr.urgent && t.Name == SettingReplicas)
		to, reason, note := p.settle(in, t, cur, want, pr.reason[t.Name], direct)
		*t.Field(&next) = to
		if to != cur {
			reasons[t.Name] = reason
		} else if note != "" {
			notes = append(notes, note)
		}
	}
	return next, reasons, notes
}

// settle keeps one setting's proposal to its bounds (a value the user set
// outside them stays), its cooldown (no second change before a full window
// follows the last, nor, unless direct, within an interval of it) and its
// step (×2 or +4 pods up, a halving down); a direct proposal (an urgent
// scale-up, a cut that makes room under the budget) goes to its target at
// once.
func (p params) settle(in Input, t Tunable, cur, want int32, reason string, direct bool) (int32, string, string) {
	b := t.Bounds(&p.bounds)
	if b == nil {
		return cur, "", ""
	}
	if cur < b.Min || cur > b.Max {
		if userSet(in.History, t.Name) {
			return cur, "", fmt.Sprintf("%s %d was set by the user outside tuning.bounds.%s [%d, %d]: the user's edit wins", t.Name, cur, t.BoundsField, b.Min, b.Max)
		}
		to := clamp(cur, b)
		return to, fmt.Sprintf("%s is outside tuning.bounds.%s [%d, %d]: %s", t.Name, t.BoundsField, b.Min, b.Max, arrow(t.Name, cur, to)), ""
	}
	if want == cur {
		return cur, "", ""
	}
	// An urgent scale-up may follow the last as soon as a window after it
	// shows it was not enough; any other change waits an interval too.
	if at, _, ok := lastApplied(in.History, t.Name); ok && ((in.Now.Sub(at) < p.interval && !direct) || in.Window.Start.Before(at)) {
		return cur, "", fmt.Sprintf("%s changed %s ago: waiting for a full window after it", t.Name, ms(in.Now.Sub(at)))
	}
	to := clamp(want, b)
	if to == cur {
		return cur, "", fmt.Sprintf("%s at its bound %d (the model asks for %d)", t.Name, cur, want)
	}
	cause := ""
	if to != want {
		cause = fmt.Sprintf("held to tuning.bounds.%s", t.BoundsField)
	}
	switch {
	case direct:
	case to > cur && to > t.StepUp(cur):
		to, cause = t.StepUp(cur), fmt.Sprintf("one step of %s per interval; up to %d later", stepUpText(t.Name), want)
	case to < cur && to < t.StepDown(cur):
		to, cause = t.StepDown(cur), fmt.Sprintf("one step down per interval; down to %d later", want)
	}
	return to, restate(reason, t.Name, cur, want, to, cause), ""
}
