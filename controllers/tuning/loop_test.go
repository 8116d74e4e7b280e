package tuning

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// svc is a small service model for driving the loop: each pod serves
// requests at cpu core-seconds each, in svcTime seconds, on one core;
// past 90% CPU or past its workers, p99 blows up and requests are shed.
type svc struct {
	rate    func(i int) float64 // requests per second at step i
	cpu     float64             // core-seconds per request
	svcTime float64             // seconds a request holds a worker
	dbWait  time.Duration       // acquire wait when the database is the limit
	noP99   bool                // the latency histogram stays empty
	p99     time.Duration       // when set, the p99 of every window
	idleCPU float64             // cores a pod uses with no requests
}

func (m svc) window(i int, end time.Time, iv time.Duration, s pacerv1.Settings) Window {
	rate := m.rate(i)
	pods := float64(s.Replicas)
	perPod := rate / pods
	cpu := perPod * m.cpu
	inFlight := perPod * m.svcTime
	w := Window{
		Start: end.Add(-iv), End: end, Pods: int(s.Replicas), Sufficient: true,
		RequestRate: rate, InFlight: min(inFlight, float64(s.MaxInFlight)), WorkerLimit: int(s.MaxInFlight),
		PoolMaxConns: int(s.PoolMaxConns), PoolAcquired: min(inFlight/2, float64(s.PoolMaxConns)), PoolAcquireWait: 100 * time.Microsecond,
		CPUCores: min(cpu+m.idleCPU, 1), P50: 5 * time.Millisecond, P95: 10 * time.Millisecond, P99: 20 * time.Millisecond,
	}
	if cpu > 0.9 || inFlight > float64(s.MaxInFlight) {
		w.P99, w.ShedRate, w.ErrorRate = 400*time.Millisecond, rate*0.1, rate*0.1
		w.QueueLength = 2
	}
	if m.dbWait > 0 {
		w.PoolAcquired, w.PoolAcquireWait, w.P99 = float64(s.PoolMaxConns), m.dbWait, 300*time.Millisecond
		w.InFlight = min(float64(s.MaxInFlight), float64(s.PoolMaxConns)*2)
	}
	if m.p99 > 0 {
		w.P99 = m.p99
	}
	if m.noP99 {
		w.P50, w.P95, w.P99 = 0, 0, 0
	}
	w.Utilization = w.InFlight / float64(s.MaxInFlight)
	return w
}

func steady(r float64) func(int) float64 { return func(int) float64 { return r } }

func loopSpec(iv time.Duration, start pacerv1.Settings) Spec {
	t := spec()
	t.Interval = &metav1.Duration{Duration: iv}
	t.Bounds.Replicas = &pacerv1.Int32Range{Min: 2, Max: 20}
	t.Bounds.Workers = &pacerv1.Int32Range{Min: 4, Max: 256}
	t.Bounds.PoolMaxConns = &pacerv1.Int32Range{Min: 2, Max: 64}
	t.Bounds.CacheMaxEntries = nil
	return Spec{Tuning: t, Settings: start, PodCPULimit: 1}
}

// drive steps the loop n intervals against m, starting at settings in
// effect, and returns every result.
func drive(l *Loop, sp Spec, m svc, from, n int, at time.Time, iv time.Duration) []Result {
	var out []Result
	for i := from; i < from+n; i++ {
		now := at.Add(time.Duration(i+1) * iv)
		w := m.window(i, now, iv, l.Settings())
		out = append(out, l.Step(Tick{Now: now, Spec: sp, Window: &w}))
	}
	return out
}

// tuned is a loop already in Auto with settings tuned away from the spec's.
func tuned(spec, inEffect pacerv1.Settings) *Loop {
	return NewLoop(Seed{Effective: &pacerv1.EffectiveSettings{Settings: inEffect, SpecSettings: &spec}, Mode: pacerv1.TuningAuto})
}

var base = pacerv1.Settings{Replicas: 2, MaxInFlight: 16, QueueDepth: 64, PoolMinConns: 1, PoolMaxConns: 16, CacheMaxEntries: 1000}

func with(s pacerv1.Settings, f func(*pacerv1.Settings)) pacerv1.Settings { f(&s); return s }

func TestLoop(t *testing.T) {
	tests := []struct {
		name  string
		run   func(t *testing.T) []Result
		check func(t *testing.T, rs []Result)
	}{{
		// Main kept 24 windows: at a 5s interval they never covered the
		// 5m scale-down window, so 10 replicas held forever.
		name: "scales down when the scale-down window is longer than 24 intervals",
		run: func(t *testing.T) []Result {
			iv := 5 * time.Second
			sp := loopSpec(iv, base)
			l := tuned(base, with(base, func(s *pacerv1.Settings) { s.Replicas = 10 }))
			return drive(l, sp, svc{rate: steady(300), cpu: 0.002, svcTime: 0.01}, 0, 120, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			if r := rs[len(rs)-1].Settings.Replicas; r >= 10 {
				t.Errorf("replicas still %d after 10 minutes at 6%% CPU", r)
			}
		},
	}, {
		// Main called windows under 50 requests insufficient and held.
		name: "an idle service shrinks to bounds.min",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, base)
			l := tuned(base, with(base, func(s *pacerv1.Settings) { s.Replicas = 7 }))
			return drive(l, sp, svc{rate: steady(0.2), cpu: 0.002, svcTime: 0.01, idleCPU: 0.02}, 0, 80, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			last := rs[len(rs)-1]
			if last.Settings.Replicas != 2 {
				t.Errorf("replicas %d, want bounds.min 2; %s", last.Settings.Replicas, last.Condition.Message)
			}
			if last.Settings.MaxInFlight != base.MaxInFlight {
				t.Errorf("maxInFlight %d at idle: a quiet window's CPU per request is no capacity figure", last.Settings.MaxInFlight)
			}
			if !strings.Contains(last.Condition.Message, "p99 not measured") {
				t.Errorf("a quiet window's p99 is not measured: %s", last.Condition.Message)
			}
		},
	}, {
		name: "database-bound load adds no replicas, workers or connections and says so",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, base)
			sp.MaxTotalConnections = 32
			l := tuned(base, base)
			return drive(l, sp, svc{rate: steady(400), cpu: 0.0005, svcTime: 0.08, dbWait: 40 * time.Millisecond}, 0, 40, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			for _, r := range rs {
				s := r.Settings
				if s.Replicas > base.Replicas || s.MaxInFlight > base.MaxInFlight || s.PoolMaxConns > base.PoolMaxConns {
					t.Fatalf("added capacity the database cannot serve: %+v; %s", s, r.Condition.Message)
				}
			}
			c := rs[len(rs)-1].Condition
			for _, w := range []string{"database-bound", "acquire wait 40ms", "connection budget 32"} {
				if c.Reason != "DatabaseBound" || !strings.Contains(c.Message, w) {
					t.Errorf("Tuned %s: %q lacks %q", c.Reason, c.Message, w)
				}
			}
		},
	}, {
		// Bursts every minute: main went 5 → 11 → 6 → 5 every six minutes.
		name: "repeating bursts do not saw-tooth",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, with(base, func(s *pacerv1.Settings) { s.Replicas = 5; s.MaxInFlight = 64 }))
			l := tuned(sp.Settings, sp.Settings)
			rate := func(i int) float64 {
				if i%4 == 0 {
					return 2400 // needs 6 pods at 0.9 CPU
				}
				return 600
			}
			return drive(l, sp, svc{rate: rate, cpu: 0.002, svcTime: 0.01}, 0, 160, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			violations := 0
			for _, r := range rs[len(rs)/2:] {
				if strings.Contains(r.Condition.Message, "p99 400ms") {
					violations++
				}
			}
			var path []int32
			for _, r := range rs {
				path = append(path, r.Settings.Replicas)
			}
			t.Logf("replicas: %v", path)
			if violations > 0 {
				t.Errorf("%d violating windows in the second 20 minutes", violations)
			}
		},
	}, {
		// Main's revert rule undid a hand-set maxInFlight 8 → 64.
		name: "a user's edit wins and is not reverted",
		run: func(t *testing.T) []Result {
			// The tuner had cut the spec's 16 to 8; the user sets 64.
			sp := loopSpec(iv, base)
			l := tuned(base, with(base, func(s *pacerv1.Settings) { s.MaxInFlight = 8 }))
			m := svc{rate: steady(400), cpu: 0.001, svcTime: 0.01}
			rs := drive(l, sp, m, 0, 10, t0, iv)
			sp.Settings.MaxInFlight = 64
			rs = append(rs, drive(l, sp, m, 10, 1, t0, iv)...)
			// p99 worse at the same load after the edit: main reverted it.
			m.p99 = 300 * time.Millisecond
			return append(rs, drive(l, sp, m, 11, 4, t0, iv)...)
		},
		check: func(t *testing.T, rs []Result) {
			for _, r := range rs[10:] {
				if r.Settings.MaxInFlight != 64 {
					t.Fatalf("maxInFlight %d, want the user's 64: %+v", r.Settings.MaxInFlight, r.Decision)
				}
			}
		},
	}, {
		name: "an empty histogram is not a p99 of 0 within objective",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, base)
			l := tuned(base, base)
			return drive(l, sp, svc{rate: steady(1000), cpu: 0.002, svcTime: 0.01, noP99: true}, 0, 1, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			m := rs[0].Condition.Message
			if strings.Contains(m, "p99 0s") || !strings.Contains(m, "p99 not measured (no latency recorded, 10% shed)") {
				t.Errorf("condition: %s", m)
			}
			if rs[0].Settings.Replicas <= base.Replicas {
				t.Errorf("shedding at 100%% CPU with no latency data: replicas %d, want more", rs[0].Settings.Replicas)
			}
		},
	}, {
		// Main jumped from the tuned value to the spec's in one pass.
		name: "leaving Auto returns to the spec one step per interval after the scale-down window",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, base)
			l := tuned(base, with(base, func(s *pacerv1.Settings) { s.Replicas = 12 }))
			sp.Tuning.Mode = pacerv1.TuningRecommend
			return drive(l, sp, svc{rate: steady(300), cpu: 0.002, svcTime: 0.01}, 0, 40, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			var path []int32
			for i, r := range rs {
				if n := len(path); n == 0 || path[n-1] != r.Settings.Replicas {
					path = append(path, r.Settings.Replicas)
					if at := time.Duration(i+1) * iv; n > 0 && at < 5*time.Minute {
						t.Errorf("stepped down after %s, before the 5m scale-down window", at)
					}
				}
			}
			if want := []int32{12, 6, 3, 2}; len(path) != len(want) || path[1] != 6 || path[3] != 2 {
				t.Errorf("replicas went %v, want %v", path, want)
			}
		},
	}, {
		// Raised the pool at once while the replicas waited for the
		// scale-down window: 13 × 12 of a budget of 80, cut back by the
		// budget fit on the next pass and raised again, every interval.
		name: "leaving Auto keeps to the connection budget on the way back",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, with(base, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 4, 18 }))
			sp.MaxTotalConnections = 80
			sp.Tuning.Mode = pacerv1.TuningRecommend
			l := tuned(sp.Settings, with(sp.Settings, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 11, 6 }))
			return drive(l, sp, svc{rate: steady(300), cpu: 0.002, svcTime: 0.01}, 0, 40, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			prev := pacerv1.Settings{Replicas: 11, PoolMaxConns: 6}
			for i, r := range rs {
				s := r.Settings
				if worst := WorstCaseConnections(max(prev.Replicas, s.Replicas), max(prev.PoolMaxConns, s.PoolMaxConns)); worst > 80 {
					t.Fatalf("step %d: %d×%d → %d×%d may hold %d connections, budget 80 (%s)",
						i, prev.Replicas, prev.PoolMaxConns, s.Replicas, s.PoolMaxConns, worst, r.Condition.Message)
				}
				if s.PoolMaxConns < prev.PoolMaxConns {
					t.Fatalf("step %d: the pool went back down %d → %d on the way to the spec's 18", i, prev.PoolMaxConns, s.PoolMaxConns)
				}
				prev = s
			}
			if prev.Replicas != 4 || prev.PoolMaxConns != 18 {
				t.Errorf("ended at replicas %d, pool %d; want the spec's 4 and 18", prev.Replicas, prev.PoolMaxConns)
			}
		},
	}, {
		// The Tuned condition said Holding (or Recommending) while the
		// way back waited, and Disabled said "the spec is rendered as
		// written" while it was not.
		name: "while the way back to the spec waits, the condition says for what",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, with(base, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 4, 18 }))
			sp.MaxTotalConnections = 80
			sp.Tuning.Mode = pacerv1.TuningDisabled
			l := tuned(sp.Settings, with(sp.Settings, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 11, 6 }))
			return drive(l, sp, svc{rate: steady(300), cpu: 0.002, svcTime: 0.01}, 0, 1, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			c := rs[0].Condition
			for _, want := range []string{"replicas 11 → 4 waits for the 5m0s scale-down window (5m0s left)",
				"poolMaxConns 6 → 12 waits on the connection budget 80 (11 replicas × 6 connections now"} {
				if c.Reason != "ReturningToSpec" || !strings.Contains(c.Message, want) {
					t.Errorf("condition %s: %s; want ReturningToSpec with %q", c.Reason, c.Message, want)
				}
			}
		},
	}, {
		// Main applied the edit at once: 10 pods at pool 8 while the
		// running 4 kept pool 16 until the kubelet delivered the new
		// config (10 × 16 = 160 connections against a budget of 80).
		name: "a user's edit that adds pods and shrinks the pool keeps to the budget while it rolls out",
		run: func(t *testing.T) []Result {
			start := with(base, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 4, 16 })
			sp := loopSpec(iv, with(start, func(s *pacerv1.Settings) { s.Replicas = 10 }))
			sp.MaxTotalConnections = 90
			sp.Tuning.Mode = pacerv1.TuningHold
			l := tuned(start, start)
			return drive(l, sp, svc{rate: steady(300), cpu: 0.002, svcTime: 0.01}, 0, 3, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			prev := pacerv1.Settings{Replicas: 4, PoolMaxConns: 16}
			for i, r := range rs {
				s := r.Settings
				if worst := WorstCaseConnections(max(prev.Replicas, s.Replicas), max(prev.PoolMaxConns, s.PoolMaxConns)); worst > 90 {
					t.Fatalf("step %d: %d×%d → %d×%d may hold %d connections, budget 90", i, prev.Replicas, prev.PoolMaxConns, s.Replicas, s.PoolMaxConns, worst)
				}
				prev = s
			}
			if prev.Replicas != 10 || prev.PoolMaxConns != 8 {
				t.Errorf("ended at replicas %d, pool %d; want the edit's 10 at pool 8", prev.Replicas, prev.PoolMaxConns)
			}
		},
	}, {
		// Pods still terminating after the rollout was seen done (a long
		// grace period) keep their connections: 7 pods at pool 10 and 2
		// terminating would hold 90 of a budget of 80.
		name: "terminating pods count in the connection budget",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, with(base, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 4, 10 }))
			sp.MaxTotalConnections = 80
			sp.Tuning.Mode = pacerv1.TuningAuto
			l := tuned(sp.Settings, sp.Settings)
			now := t0.Add(iv)
			w := svc{rate: steady(2000), cpu: 0.002, svcTime: 0.01}.window(0, now, iv, l.Settings())
			return []Result{l.Step(Tick{Now: now, Spec: sp, Window: &w, Terminating: 2})}
		},
		check: func(t *testing.T, rs []Result) {
			d := rs[0].Decision
			if s := rs[0].Settings; WorstCaseConnections(s.Replicas+2, s.PoolMaxConns) > 80 {
				t.Errorf("replicas %d at pool %d with 2 terminating pods exceed the budget 80", s.Replicas, s.PoolMaxConns)
			}
			if d == nil || !strings.Contains(d.Changes[0].Reason, "2 terminating pods keep theirs") {
				t.Errorf("decision %+v", d)
			}
		},
	}, {
		name: "a capped change states the applied number and the cap",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, with(base, func(s *pacerv1.Settings) { s.Replicas = 3 }))
			sp.Tuning.Bounds.Replicas.Max = 4
			l := tuned(sp.Settings, sp.Settings)
			return drive(l, sp, svc{rate: steady(1500), cpu: 0.002, svcTime: 0.01}, 0, 1, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			d := rs[0].Decision
			if d == nil || len(d.Changes) == 0 || d.Changes[0].To != 4 ||
				!strings.Contains(d.Changes[0].Reason, "replicas 3 → 4") || !strings.Contains(d.Changes[0].Reason, "5 pods; tuning.bounds.replicas.max is 4") {
				t.Errorf("decision %+v", d)
			}
		},
	}, {
		name: "steady load: an oversized pool shrinks to what serves",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, with(base, func(s *pacerv1.Settings) { s.PoolMaxConns = 64; s.Replicas = 3 }))
			sp.Tuning.Bounds.Replicas.Min = 3 // 4 connections in use per pod
			l := tuned(sp.Settings, sp.Settings)
			return drive(l, sp, svc{rate: steady(600), cpu: 0.001, svcTime: 0.04}, 0, 80, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			// 4 in use per pod: 4 + 2√4 + 1 = 9 needed; a pool within
			// slack × 9 = 18 of it is not cut further.
			if p := rs[len(rs)-1].Settings.PoolMaxConns; p > 18 {
				t.Errorf("poolMaxConns %d for 4 in use per pod, want ≤ 18", p)
			}
		},
	}, {
		name: "Hold freezes the settings in effect",
		run: func(t *testing.T) []Result {
			sp := loopSpec(iv, base)
			sp.Tuning.Mode = pacerv1.TuningHold
			l := tuned(base, with(base, func(s *pacerv1.Settings) { s.Replicas = 5 }))
			return drive(l, sp, svc{rate: steady(5000), cpu: 0.002, svcTime: 0.01}, 0, 30, t0, iv)
		},
		check: func(t *testing.T, rs []Result) {
			for _, r := range rs {
				if r.Settings.Replicas != 5 || r.Decision != nil || r.Condition.Reason != "Held" {
					t.Fatalf("in Hold: %+v %+v", r.Settings, r.Condition)
				}
			}
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, tt.run(t)) })
	}
}

// TestLoopSync: which settings are in effect on a pass, from the seed
// (status) and the spec.
func TestLoopSync(t *testing.T) {
	spec := pacerv1.Settings{Replicas: 2, MaxInFlight: 64, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 10000}
	tunedTo := with(spec, func(s *pacerv1.Settings) { s.Replicas, s.MaxInFlight, s.PoolMaxConns = 4, 96, 8 })
	sp := func(mode pacerv1.TuningMode, f ...func(*Spec)) Spec {
		s := Spec{Settings: spec, Tuning: pacerv1.TuningSpec{Mode: mode, Bounds: pacerv1.TuningBounds{
			Replicas: &pacerv1.Int32Range{Min: 1, Max: 6}, Workers: &pacerv1.Int32Range{Min: 8, Max: 256},
		}}}
		for _, g := range f {
			g(&s)
		}
		return s
	}
	tests := []struct {
		name      string
		seed      *pacerv1.EffectiveSettings
		spec      Spec
		want      pacerv1.Settings
		wantEdits []string
	}{
		{name: "Auto keeps tuned values of bounded settings only", spec: sp(pacerv1.TuningAuto),
			want: with(tunedTo, func(s *pacerv1.Settings) { s.PoolMaxConns = 16 })},
		{name: "Recommend keeps the tuned values until Step returns them", spec: sp(pacerv1.TuningRecommend), want: tunedTo},
		{name: "a user's edit of a tuned setting wins and is recorded",
			spec: sp(pacerv1.TuningAuto, func(s *Spec) { s.Settings.MaxInFlight = 32 }),
			want: with(tunedTo, func(s *pacerv1.Settings) { s.PoolMaxConns, s.MaxInFlight = 16, 32 }), wantEdits: []string{SettingWorkers}},
		{name: "no status yet: the spec", spec: sp(pacerv1.TuningAuto), want: spec},
		{name: "tuned replicas with the spec's pool over the budget shrink the pool",
			spec: sp(pacerv1.TuningAuto, func(s *Spec) { s.MaxTotalConnections = 40 }),
			want: with(tunedTo, func(s *pacerv1.Settings) { s.PoolMaxConns = 9 }), wantEdits: []string{SettingPool}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seed := Seed{Effective: &pacerv1.EffectiveSettings{Settings: tunedTo, SpecSettings: &spec}}
			if tt.name == "no status yet: the spec" {
				seed = Seed{}
			}
			l := NewLoop(seed)
			got, edits := l.Sync(t0, tt.spec)
			if got != tt.want {
				t.Errorf("settings\n got %+v\nwant %+v", got, tt.want)
			}
			var names []string
			for _, e := range edits {
				names = append(names, e.Setting)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantEdits, ",") {
				t.Errorf("edits %v, want %v", edits, tt.wantEdits)
			}
			if len(edits) > 0 && len(l.History()) != 1 {
				t.Errorf("edits not in history: %+v", l.History())
			}
		})
	}
}

// A loop seeded again from status before the edit was rendered (a retried
// pass, a restarted manager, a pass stopped by an object Pacer does not
// own) sees the same edit again: history holds it once.
func TestReseededLoopRecordsAnEditOnce(t *testing.T) {
	spec := base
	tunedTo := with(base, func(s *pacerv1.Settings) { s.MaxInFlight = 64 })
	sp := loopSpec(30*time.Second, with(base, func(s *pacerv1.Settings) { s.MaxInFlight = 80 }))
	sp.Tuning.Mode = pacerv1.TuningAuto
	var history []pacerv1.Decision
	for i := range 3 {
		l := NewLoop(Seed{Effective: &pacerv1.EffectiveSettings{Settings: tunedTo, SpecSettings: &spec}, History: history, Mode: pacerv1.TuningAuto})
		if _, edits := l.Sync(t0.Add(time.Duration(i)*time.Second), sp); len(edits) != 1 {
			t.Fatalf("pass %d: edits %+v, want the one edit", i, edits)
		}
		history = l.History()
	}
	if len(history) != 1 {
		t.Errorf("history holds %d entries, want 1: %+v", len(history), history)
	}
	// A different decision is still recorded.
	l := NewLoop(Seed{Effective: &pacerv1.EffectiveSettings{Settings: tunedTo, SpecSettings: &spec}, History: history, Mode: pacerv1.TuningAuto})
	l.Sync(t0, loopSpec(30*time.Second, with(base, func(s *pacerv1.Settings) { s.MaxInFlight = 90 })))
	if got := len(l.History()); got != 2 {
		t.Errorf("history holds %d entries after a new edit, want 2", got)
	}
}

// TestLoopStagesAScaleOutBehindAPoolCut drives the scorecard's case: a
// load that wants more pods than the budget allows at the pool in effect.
// The new pods start with the cut pool at once, while running pods keep
// the old one until their config arrives, so the replicas beyond what fits
// at the old pool wait for a window that shows every pod on the new config.
func TestLoopStagesAScaleOutBehindAPoolCut(t *testing.T) {
	start := with(base, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 6, 10 })
	sp := loopSpec(iv, start)
	sp.MaxTotalConnections = 80
	l := tuned(start, start)
	m := svc{rate: steady(6000), cpu: 0.00125, svcTime: 0.002}

	// worst is what the pods may hold while a → b rolls out.
	worst := func(a, b pacerv1.Settings) int64 {
		return WorstCaseConnections(max(a.Replicas, b.Replicas), max(a.PoolMaxConns, b.PoolMaxConns))
	}
	step := func(i int, sufficient bool, pools map[int32]int32) (pacerv1.Settings, Result) {
		before := l.Settings()
		now := t0.Add(time.Duration(i+1) * iv)
		w := m.window(i, now, iv, before)
		w.Pools = pools
		if !sufficient {
			w.Sufficient, w.Reason = false, "pods on an older config generation"
		}
		return before, l.Step(Tick{Now: now, Spec: sp, Window: &w})
	}

	before, r1 := step(0, true, nil)
	s1 := r1.Settings
	if s1.PoolMaxConns >= before.PoolMaxConns || s1.Replicas <= before.Replicas {
		t.Fatalf("step 1: want a pool cut and some more pods, got %+v → %+v (%s)", before, s1, r1.Condition.Message)
	}
	if w := worst(before, s1); w > 80 {
		t.Fatalf("step 1: %+v → %+v lets the pods hold %d connections, budget 80", before, s1, w)
	}
	if r1.Decision == nil || !strings.Contains(changeList(r1.Decision.Changes)+" "+r1.Decision.Changes[0].Reason,
		"more as pods switch to pool") {
		t.Fatalf("step 1: the reason does not explain the staging: %+v", r1.Decision)
	}

	// No pod is seen on the new pool yet: nothing more.
	_, r2 := step(1, false, map[int32]int32{before.PoolMaxConns: s1.Replicas})
	if r2.Settings.Replicas != s1.Replicas {
		t.Fatalf("step 2 (pods on the old config): replicas %d → %d", s1.Replicas, r2.Settings.Replicas)
	}

	// One pod reports the cut pool, the others the old one: the window
	// cannot be judged, but the plan goes on as far as the room it made.
	switched := map[int32]int32{s1.PoolMaxConns: 1, before.PoolMaxConns: s1.Replicas - 1}
	_, r2b := step(2, false, switched)
	s2 := r2b.Settings
	if s2.Replicas <= s1.Replicas {
		t.Fatalf("step 3 (1 of %d pods on pool %d): replicas stayed at %d (%s)", s1.Replicas, s1.PoolMaxConns, s1.Replicas, r2b.Condition.Message)
	}
	// What the pods may hold: those seen at their pools, the new ones at
	// the pool they start on.
	held := PodConnections(s1.PoolMaxConns) + int64(s1.Replicas-1)*PodConnections(before.PoolMaxConns) +
		int64(s2.Replicas-s1.Replicas)*PodConnections(s1.PoolMaxConns)
	if held > 80 {
		t.Fatalf("step 3: %d → %d pods may hold %d connections, budget 80", s1.Replicas, s2.Replicas, held)
	}
	if r2b.Decision == nil || !strings.Contains(r2b.Decision.Changes[0].Reason, fmt.Sprintf("1 of %d run pool %d now", s1.Replicas, s1.PoolMaxConns)) {
		t.Fatalf("step 3: the reason does not say which pods made room: %+v", r2b.Decision)
	}

	// Every pod runs the cut pool now: the rest of the pods follow.
	_, r3 := step(3, true, map[int32]int32{s1.PoolMaxConns: s2.Replicas})
	if r3.Settings.Replicas <= s2.Replicas {
		t.Fatalf("step 4 (rolled out): replicas stayed at %d (%s)", s2.Replicas, r3.Condition.Message)
	}
	t.Logf("%d×%d → %d×%d → %d → %d×%d", before.Replicas, before.PoolMaxConns, s1.Replicas, s1.PoolMaxConns, s2.Replicas, r3.Settings.Replicas, r3.Settings.PoolMaxConns)
	if w := worst(s2, r3.Settings); w > 80 {
		t.Fatalf("step 3: %+v → %+v lets the pods hold %d connections, budget 80", s1, r3.Settings, w)
	}
}

// TestLoopDropsAPlanInFlightForAUsersEdit: a plan staged behind a pool
// cut goes on as pods switch only while it is the tuner's latest word; a
// user's edit of the replicas meanwhile wins, and an untrusted window
// does not bring the plan back over it. Whether the edit overrode a tuned
// value (the first stage added a pod) or not (no room at the old pool:
// the replicas in effect are still the spec's, and nothing is recorded),
// the plan was made under the old spec: it is dropped, not resumed.
func TestLoopDropsAPlanInFlightForAUsersEdit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		budget     int32
		firstStage func(int32) bool // of the replicas after step 1
	}{
		{"the edit overrides a tuned value", 80, func(int32) bool { return true }},
		// 6 × 11 = 66: no room for a pod at pool 10.
		{"the edit overrides no tuned value", 70, func(r int32) bool { return r == 6 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := with(base, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 6, 10 })
			sp := loopSpec(iv, start)
			sp.MaxTotalConnections = tc.budget
			l := tuned(start, start)
			m := svc{rate: steady(6000), cpu: 0.00125, svcTime: 0.002}
			w := m.window(0, t0.Add(iv), iv, start)
			r1 := l.Step(Tick{Now: t0.Add(iv), Spec: sp, Window: &w})
			if r1.Settings.PoolMaxConns >= 10 || !tc.firstStage(r1.Settings.Replicas) || l.staged == nil {
				t.Fatalf("step 1: want a pool cut with more pods planned than fit yet, got %+v (%s)", r1.Settings, r1.Condition.Message)
			}

			sp.Settings.Replicas = 5 // the user's edit
			w = m.window(1, t0.Add(2*iv), iv, l.Settings())
			w.Sufficient, w.Reason = false, "pods on an older config generation"
			w.Pools = map[int32]int32{r1.Settings.PoolMaxConns: 5}
			r2 := l.Step(Tick{Now: t0.Add(2 * iv), Spec: sp, Window: &w})
			if r2.Settings.Replicas != 5 {
				t.Fatalf("step 2 (spec replicas 6 → 5, pods switched, window untrusted): replicas %d (%s)", r2.Settings.Replicas, r2.Condition.Message)
			}
		})
	}
}

// TestRestartedLoopCountsThePoolACutReplaced: a pool cut from 10 to 4 was
// followed by two stages that only added pods when the operator
// restarted. The pods may still hold pool 10 until a window shows every
// one on 4: the restarted loop counts it, not only what the newest
// decision (a replicas stage) replaced.
func TestRestartedLoopCountsThePoolACutReplaced(t *testing.T) {
	in := with(base, func(s *pacerv1.Settings) { s.Replicas, s.PoolMaxConns = 9, 4 })
	l := NewLoop(Seed{
		Effective: &pacerv1.EffectiveSettings{Settings: in},
		Mode:      pacerv1.TuningAuto,
		History: []pacerv1.Decision{
			applied(t0.Add(40*time.Second), pacerv1.Change{Setting: SettingReplicas, From: 8, To: 9, Source: pacerv1.ChangeByTuner}),
			applied(t0.Add(20*time.Second), pacerv1.Change{Setting: SettingReplicas, From: 7, To: 8, Source: pacerv1.ChangeByTuner}),
			applied(t0, pacerv1.Change{Setting: SettingReplicas, From: 6, To: 7, Source: pacerv1.ChangeByTuner},
				pacerv1.Change{Setting: SettingPool, From: 10, To: 4, Source: pacerv1.ChangeByBudget}),
		},
	})
	if r := l.rollout(); r.PoolMaxConns != 10 || r.Replicas != 8 {
		t.Fatalf("restarted rollout %+v, want pool 10 (the cut's) and replicas 8 counted until a window shows the rollout over", r)
	}
}

// TestLoopDecidesOncePerIntervalAndAtOnceWhenUrgent: windows come every
// ObservePeriod of a 60 s interval (10 s). A need that can wait (CPU over
// the target, the objective met) waits for the interval since the last
// decision, and the windows in between leave the condition as it was; a
// need that cannot (the objective missed with the CPU saturated) is acted
// on at the first window that shows it. The loop that judged every window
// it was handed rewrote the condition on each (a status write per window).
func TestLoopDecidesOncePerIntervalAndAtOnceWhenUrgent(t *testing.T) {
	const interval = 60 * time.Second
	obs := ObservePeriod(interval)
	if obs != 10*time.Second {
		t.Fatalf("ObservePeriod(60s) = %s, want 10s", obs)
	}
	rise := func(to float64) func(int) float64 {
		return func(i int) float64 {
			if i < 2 {
				return 500 // 0.5 cores of 1 per pod on 2 pods
			}
			return to
		}
	}
	firstChange := func(rs []Result) int {
		for i, r := range rs {
			if r.Decision != nil && r.Decision.Applied {
				return i
			}
		}
		return -1
	}
	sp := loopSpec(interval, base)

	// 850 req/s: 0.85 cores per pod, over the 70% target, p99 fine.
	l := tuned(base, base)
	rs := drive(l, sp, svc{rate: rise(850), cpu: 0.002, svcTime: 0.01}, 0, 12, t0, obs)
	// Window 0 (at 10 s) decided and held; the next decision is due at 70 s.
	if i := firstChange(rs); i != 6 {
		t.Errorf("CPU over the target from window 2: first change in window %d (at %ds), want window 6 (at 70 s, an interval after the last decision)", i, (i+1)*10)
	}
	for i := 1; i < 6; i++ {
		if rs[i].Condition != rs[0].Condition {
			t.Errorf("window %d between decisions rewrote the condition: %q, want the last decision's %q", i, rs[i].Condition.Message, rs[0].Condition.Message)
		}
	}

	// 1200 req/s: 1.2 cores wanted per pod of 1, p99 400 ms: urgent.
	l = tuned(base, base)
	rs = drive(l, sp, svc{rate: rise(1200), cpu: 0.002, svcTime: 0.01}, 0, 12, t0, obs)
	if i := firstChange(rs); i != 2 {
		t.Errorf("objective missed with the CPU saturated from window 2: first change in window %d, want 2 (at once)", i)
	} else if got := rs[2].Settings.Replicas; got <= base.Replicas {
		t.Errorf("urgent change left replicas at %d", got)
	}
}

// TestObservePeriodSplitsTheInterval: windows are at most the panic
// horizon and an interval is a whole number of them, so every decision
// falls on a window's end.
func TestObservePeriodSplitsTheInterval(t *testing.T) {
	for iv, want := range map[time.Duration]time.Duration{
		5 * time.Second:  5 * time.Second,
		10 * time.Second: 10 * time.Second,
		15 * time.Second: 7500 * time.Millisecond,
		30 * time.Second: 10 * time.Second,
		45 * time.Second: 9 * time.Second,
		60 * time.Second: 10 * time.Second,
		0:                10 * time.Second, // the default 30 s
	} {
		if got := ObservePeriod(iv); got != want {
			t.Errorf("ObservePeriod(%s) = %s, want %s", iv, got, want)
		}
	}
}
