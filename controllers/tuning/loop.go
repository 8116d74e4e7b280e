package tuning

import (
	"fmt"
	"maps"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Loop is one TunedService's tuner: everything between "a window was
// observed" and "these settings are in effect". It keeps the recent
// windows (as many as the spec's interval and stabilization windows
// need), the settings in effect, the spec it last saw (to tell a user's
// edit), the decision history and when tuning left Auto. It does no I/O
// and reads no clock: the reconciler and the simulator drive it alike.
//
// Each pass, call Sync to learn the settings to render (a user's edit
// takes effect at once). Every ObservePeriod(interval), call Step with
// the window observed (or nil and why not): the loop decides once per
// interval, and in between acts only on what is urgent. A Loop is not
// safe for concurrent use.
type Loop struct {
	settings pacerv1.Settings   // in effect
	spec     *pacerv1.Settings  // the spec's own settings, as last seen
	history  []pacerv1.Decision // newest first, at most pacerv1.MaxHistory
	windows  []Window           // sufficient windows, newest first, within horizon
	mode     pacerv1.TuningMode // as last seen; "" before the first call
	leftAuto time.Time          // when the mode last left Auto
	returned time.Time          // when the last step back toward the spec was made
	// decided is when the last decision judged a trusted window (or put
	// a change in effect), and held the Tuned condition it left: windows
	// between two decisions only feed the model, unless urgent.
	decided   time.Time
	condition Condition
	lastRec   *pacerv1.Settings // the last recommendation recorded in history
	// held is what the pods may still hold of earlier replicas and pool
	// sizes: the most of each put in effect before the last such change
	// at changed, until a window that starts after it shows every pod on
	// the new config.
	held    Rollout
	changed time.Time
	// switched is the pods seen, by request pool, in the latest window
	// that started after changed (Rollout.Switched).
	switched map[int32]int32
	// fresh is the pods added since the pool in effect was written, at
	// poolAt (Rollout.Fresh).
	fresh  int32
	poolAt time.Time
	// stepped is the time of the last Step: a pool put in effect at or
	// before it has been rendered.
	stepped time.Time
	// staged is what the last decision wanted once the rollout lets it
	// fit the budget (Decision.Staged); nil when nothing waits.
	staged *pacerv1.Settings
	// terminating is the pods being deleted, as the last tick saw them:
	// they keep their connections until they are gone.
	terminating int32
	// pending holds the spec's values a user's edit asked for that the
	// connection budget held back while a rollout is under way; they
	// take effect once it fits.
	pending map[string]int32
}

// Seed is what a new Loop starts from: what status says. A restarted
// operator loses the recent windows (the tuner is cautious until they
// refill), not the settings in effect, the history or the user's edits.
type Seed struct {
	// Effective is status.effective; nil for a new TunedService.
	Effective *pacerv1.EffectiveSettings
	// History is status.history, newest first.
	History []pacerv1.Decision
	// Mode is the mode the settings in Effective were made under; "" when
	// unknown (then a mode other than Auto counts as just left).
	Mode pacerv1.TuningMode
}

// NewLoop returns a Loop that continues from seed.
func NewLoop(seed Seed) *Loop {
	l := &Loop{history: withSources(seed.History), mode: seed.Mode}
	if e := seed.Effective; e != nil {
		l.settings = e.Settings
		if e.SpecSettings != nil {
			s := *e.SpecSettings
			l.spec = &s
		}
	}
	// A restarted loop cannot tell whether the last change has rolled
	// out: it counts the settings the changes replaced, back to the last
	// change of the pool (a cut is followed by the pods it made room for,
	// in stages that change only the replicas), until a window shows the
	// rollout is over.
	for _, d := range l.history {
		if !d.Applied {
			continue
		}
		if l.changed.IsZero() {
			l.changed = d.Time.Time
		}
		pool := false
		for _, c := range d.Changes {
			switch c.Setting {
			case SettingReplicas:
				l.held.Replicas = max(l.held.Replicas, c.From)
			case SettingPool:
				l.held.PoolMaxConns, pool = max(l.held.PoolMaxConns, c.From), true
				if l.poolAt.IsZero() {
					l.poolAt = d.Time.Time
				}
			}
		}
		if pool {
			break
		}
	}
	if !l.held.underway() {
		l.changed = time.Time{}
	}
	return l
}

// changeTo puts next in effect at now. Until a window shows every pod on
// it, the pods may still hold the replicas and pool it replaces.
func (l *Loop) changeTo(now time.Time, next pacerv1.Settings) {
	prev := l.settings
	l.settings = next
	if prev == (pacerv1.Settings{}) || (prev.Replicas == next.Replicas && prev.PoolMaxConns == next.PoolMaxConns) {
		return
	}
	l.held = Rollout{Replicas: max(l.held.Replicas, prev.Replicas), PoolMaxConns: max(l.held.PoolMaxConns, prev.PoolMaxConns)}
	l.changed = now
	l.switched = nil
	switch {
	case prev.PoolMaxConns != next.PoolMaxConns:
		l.fresh, l.poolAt = 0, now
	case next.Replicas > prev.Replicas && l.poolAt.Before(now):
		l.fresh += next.Replicas - prev.Replicas
	case next.Replicas < prev.Replicas:
		// A scale-down removes the newest pods first, and they may be
		// the fresh ones.
		l.fresh = max(l.fresh-(prev.Replicas-next.Replicas), 0)
	}
}

// rollout is what the pods may still hold while a change rolls out.
func (l *Loop) rollout() Rollout {
	r := l.held
	r.Terminating = l.terminating
	if r.underway() {
		r.Switched, r.Fresh = l.switched, l.fresh
	}
	return r
}

// sawPools keeps the pools the pods of w ran, when w started after the last
// change: every scrape in it was taken after the change, so a pod that
// reported a pool holds at most that pool or a later one.
func (l *Loop) sawPools(w *Window) {
	if w == nil || w.Pools == nil || w.Start.Before(l.changed) {
		return
	}
	l.switched = maps.Clone(w.Pools)
}

// rolledOut forgets the settings the pods held before the last change once
// w, a window that starts after it and could be trusted (every ready pod
// on the latest config), shows the change has rolled out. A pod still
// starting may have mounted the config it replaced: while any is, the
// rollout is not over.
func (l *Loop) rolledOut(w *Window) {
	if w != nil && w.Sufficient && !w.Start.Before(l.changed) && int32(w.Pods) >= l.settings.Replicas {
		l.held, l.switched, l.fresh = Rollout{}, nil, 0
	}
}

// Spec is what the loop reads from a TunedService's spec.
type Spec struct {
	// Tuning is spec.tuning (mode, interval, objective, bounds, stabilization).
	Tuning pacerv1.TuningSpec
	// Settings are the spec's own values of every setting.
	Settings pacerv1.Settings
	// MaxTotalConnections is spec.database.maxTotalConnections; 0 when unset.
	MaxTotalConnections int32
	// PodCPULimit is a pod's CPU limit in cores; 0 when the pods have no
	// limit (a request is not a ceiling: such a pod's capacity is unknown
	// and the worker slots alone measure it).
	PodCPULimit float64
}

// Tick is one observation's input to Step.
type Tick struct {
	// Now is the time of the step (the end of the window, give or take).
	Now  time.Time
	Spec Spec
	// Window is the observation (over ObservePeriod of the interval); nil
	// when none could be made.
	Window *Window
	// NoWindow says why Window is nil: a condition reason
	// (MetricsUnavailable, ObservationFailed) and a message.
	NoWindow Condition
	// Terminating is the pods being deleted (a long termination grace
	// period keeps them, and their connections, after a window showed
	// the rollout done). While there are any, the connection budget
	// counts them on top of the replicas.
	Terminating int32
}

// Condition is the Tuned condition a step leaves.
type Condition struct {
	Status  metav1.ConditionStatus
	Reason  string
	Message string
}

// Result is what one Step decided.
type Result struct {
	// Settings are the settings to render now.
	Settings pacerv1.Settings
	// Decision holds the tuner's changes from the settings in effect
	// before the step, with reasons; Applied says whether they are in
	// Settings (Auto, or a step back to the spec after leaving Auto) or
	// only recommended. Nil when nothing changed or was recommended.
	Decision *pacerv1.Decision
	// Recommendation is for status.recommendation: the settings the
	// tuner wants now; nil when it could not judge.
	Recommendation *pacerv1.Recommendation
	// Condition is the Tuned condition.
	Condition Condition
	// DatabaseBound is true when the window shows the database, not the
	// pods, limiting the service.
	DatabaseBound bool
	// Limited is true when the objective is missed and a bound holds back
	// the setting that would meet it.
	Limited bool
	// Judged is true when the step decided on its window (once per
	// interval, or at once when urgent); false when the window only fed
	// the model and Condition is the last decision's.
	Judged bool
}

// Edit is a user's edit the loop took: the spec's value of a tuned
// setting changed, and it wins over the tuner's.
type Edit = pacerv1.Change

// EditPrefix starts the reason of every change that records a user's edit,
// for people; code reads Change.Source.
const EditPrefix = "user edit: "

// Sync returns the settings to render for spec and the user's edits taken
// since the last call (each also lands in History). Call it every pass,
// before Step; Step calls it too.
func (l *Loop) Sync(now time.Time, spec Spec) (pacerv1.Settings, []Edit) {
	mode := ModeOf(spec.Tuning.Mode)
	applies := modes[mode].applies
	switch {
	case applies:
		l.leftAuto = time.Time{}
	case modes[l.mode].applies, l.leftAuto.IsZero():
		// Just left Auto, or a restarted loop: the scale-down window
		// starts over.
		l.leftAuto = now
	}
	modeChanged := mode != l.mode
	l.mode = mode
	first := l.spec == nil && l.settings == (pacerv1.Settings{})
	out := spec.Settings // untuned settings always follow the spec
	var edits []Edit
	for _, t := range Tunables {
		wanted := t.Get(spec.Settings)
		inEffect := t.Get(l.settings)
		switch {
		case first:
			continue
		case l.spec != nil && t.Get(*l.spec) != wanted:
			// The user changed the spec's value: it wins at once.
			// Recorded when it overrides a value the tuner chose.
			if inEffect != wanted && inEffect != t.Get(*l.spec) {
				edits = append(edits, pacerv1.Change{Setting: t.Name, From: inEffect, To: wanted,
					Reason: EditPrefix + fmt.Sprintf("the spec's %s changed to %d and wins over the %d in effect", t.Name, wanted, inEffect), Source: pacerv1.ChangeByUser})
			}
		case t.Bounds(&spec.Tuning.Bounds) == nil && applies:
			// Not tuned in Auto: as the spec says.
		default:
			*t.Field(&out) = inEffect
		}
	}
	if !first {
		edits = l.applyPending(spec, &out, edits)
	}
	if fix, ok := fitSpecBudget(&out, spec.MaxTotalConnections); ok {
		edits = append(edits, fix)
	}
	if !first {
		edits = l.stageEdits(spec, &out, edits)
	}
	if len(edits) > 0 {
		l.record(pacerv1.Decision{Time: metav1.NewTime(now), Mode: mode, Applied: true, Changes: edits})
	}
	if len(edits) > 0 || modeChanged || (l.spec != nil && *l.spec != spec.Settings) {
		// A plan in flight was the tuner's under the old spec or mode,
		// whether or not an edit overrode a tuned value: the next judged
		// window plans again.
		l.staged = nil
	}
	s := spec.Settings
	l.spec = &s
	l.changeTo(now, out)
	return out, edits
}

// Step takes one interval's observation and decides. In Auto mode the
// decision is put in effect; in Recommend mode it is only recommended;
// Hold keeps every setting as it is; outside Auto, settings the tuner had
// moved return to the spec's values one step per interval, scale-downs
// after the scale-down window.
func (l *Loop) Step(tk Tick) Result {
	cur, _ := l.Sync(tk.Now, tk.Spec)
	return l.step(tk, cur)
}

// Settings are the settings in effect.
func (l *Loop) Settings() pacerv1.Settings { return l.settings }

// History is the decision history, newest first, for status.history.
func (l *Loop) History() []pacerv1.Decision { return append([]pacerv1.Decision(nil), l.history...) }

// AtSpec reports whether every setting in effect is the spec's own value
// (nothing left to return to after leaving Auto).
func (l *Loop) AtSpec(spec Spec) bool { return l.settings == spec.Settings }

// ModeOf is the mode m stands for: the default Recommend when empty, and
// Disabled for its old spelling Off.
func ModeOf(m pacerv1.TuningMode) pacerv1.TuningMode {
	switch strings.ToLower(string(m)) {
	case "":
		return pacerv1.TuningRecommend
	case "off", "false":
		return pacerv1.TuningDisabled
	}
	return m
}

func (l *Loop) record(d pacerv1.Decision) {
	// A loop seeded again from status (a restarted manager, or a pass
	// retried before its result was rendered) may see the same edit twice:
	// history never holds the same decision twice in a row.
	if len(l.history) > 0 {
		last := l.history[0]
		last.Time = d.Time
		if equality.Semantic.DeepEqual(last, d) {
			return
		}
	}
	h := append([]pacerv1.Decision{d}, l.history...)
	l.history = h[:min(len(h), pacerv1.MaxHistory)]
}

// fitSpecBudget shrinks the pool when replicas × pool would exceed the
// database's connection budget, which a mix of user edits and tuned values
// could otherwise reach.
func fitSpecBudget(s *pacerv1.Settings, budget int32) (pacerv1.Change, bool) {
	if budget <= 0 || s.Replicas <= 0 || WorstCaseConnections(s.Replicas, s.PoolMaxConns) <= int64(budget) {
		return pacerv1.Change{}, false
	}
	from := s.PoolMaxConns
	s.PoolMaxConns = max(1, budget/s.Replicas-HealthPoolConns)
	return pacerv1.Change{
		Setting: SettingPool, From: from, To: s.PoolMaxConns,
		Reason: fmt.Sprintf("%d replicas × %d connections each (pool and health pool) would exceed the connection budget %d", s.Replicas, PodConnections(from), budget),
		Source: pacerv1.ChangeByBudget,
	}, true
}

// applyPending puts back the values of an earlier edit the connection
// budget held back, while the spec still asks for them.
func (l *Loop) applyPending(spec Spec, out *pacerv1.Settings, edits []Edit) []Edit {
	for _, t := range Tunables {
		v, ok := l.pending[t.Name]
		if !ok {
			continue
		}
		if t.Get(spec.Settings) != v {
			delete(l.pending, t.Name) // the user changed it again
			continue
		}
		*t.Field(out) = v
	}
	return edits
}

// stageEdits keeps a user's edit within the connection budget while it
// rolls out, as the tuner's own changes are: until every pod runs the new
// pool, running pods keep the old one and removed pods keep theirs, so a
// rise of replicas (or pool) goes only as far as fits at the old pool (or
// over the old replicas) now, and the rest once a window shows every pod
// on the new config. Cuts take effect at once.
func (l *Loop) stageEdits(spec Spec, out *pacerv1.Settings, edits []Edit) []Edit {
	p := resolve(Input{Tuning: spec.Tuning, MaxTotalConnections: spec.MaxTotalConnections})
	asked := *out
	reasons := map[string]string{}
	p.fitRollout(l.settings, l.rollout(), out, reasons)
	for _, t := range Tunables {
		want, got, inEffect := t.Get(asked), t.Get(*out), t.Get(l.settings)
		if got != want {
			if l.pending == nil {
				l.pending = map[string]int32{}
			}
			l.pending[t.Name] = want
		} else if _, was := l.pending[t.Name]; was {
			delete(l.pending, t.Name)
			if got != inEffect {
				edits = append(edits, pacerv1.Change{Setting: t.Name, From: inEffect, To: got,
					Reason: EditPrefix + fmt.Sprintf("the spec's %s %d, held back by the connection budget while the last change rolled out, now fits: %s", t.Name, want, arrow(t.Name, inEffect, got)), Source: pacerv1.ChangeByUser})
			}
			continue
		}
		if got == want {
			continue
		}
		found := false
		for i := range edits {
			if e := &edits[i]; e.Setting == t.Name {
				e.To, found = got, true
				if r := reasons[t.Name]; r != "" {
					e.Reason += "; " + r
				}
			}
		}
		if !found && got != inEffect {
			edits = append(edits, pacerv1.Change{Setting: t.Name, From: inEffect, To: got,
				Reason: EditPrefix + fmt.Sprintf("the spec's %s changed to %d: %s", t.Name, want, reasons[t.Name]), Source: pacerv1.ChangeByUser})
		}
	}
	kept := edits[:0]
	for _, e := range edits {
		if e.From != e.To { // an edit held back whole waits in pending
			kept = append(kept, e)
		}
	}
	return kept
}

// withSources copies history, giving every change written before
// Change.Source existed the source its reason's prefix names: the one
// place the prose is read, once, when a loop is seeded from status.
func withSources(h []pacerv1.Decision) []pacerv1.Decision {
	out := make([]pacerv1.Decision, len(h))
	for i, d := range h {
		d.Changes = append([]pacerv1.Change(nil), d.Changes...)
		for j := range d.Changes {
			c := &d.Changes[j]
			if c.Source != "" {
				continue
			}
			switch {
			case strings.HasPrefix(c.Reason, EditPrefix):
				c.Source = pacerv1.ChangeByUser
			case strings.HasPrefix(c.Reason, RevertPrefix):
				c.Source = pacerv1.ChangeByRevert
			case !d.Applied || d.Mode == pacerv1.TuningAuto:
				c.Source = pacerv1.ChangeByTuner
			default:
				c.Source = pacerv1.ChangeToSpec
			}
		}
		out[i] = d
	}
	return out
}
