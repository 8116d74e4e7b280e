package tuning

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// randomInput draws an arbitrary but well-formed Input: any window
// figures, any settings, bounds present or not, a budget or not, any
// history. The randomness is the test's; Decide sees a plain value.
func randomInput(r *rand.Rand) Input {
	in := input()
	f := func(lo, hi float64) float64 { return lo + r.Float64()*(hi-lo) }
	i32 := func(lo, hi int32) int32 { return lo + r.Int32N(hi-lo+1) }
	rng := func() *pacerv1.Int32Range {
		if r.IntN(5) == 0 {
			return nil
		}
		lo := i32(1, 20)
		return &pacerv1.Int32Range{Min: lo, Max: lo + i32(0, 40)}
	}
	in.Tuning.Bounds = pacerv1.TuningBounds{Replicas: rng(), Workers: rng(), PoolMaxConns: rng(), CacheMaxEntries: rng()}
	if r.IntN(4) == 0 {
		in.Tuning.Stabilization.ScaleDown = &metav1.Duration{Duration: 0}
	}
	in.MaxTotalConnections = 0
	if r.IntN(3) > 0 {
		in.MaxTotalConnections = i32(1, 400)
	}
	if r.IntN(3) == 0 {
		in.PodCPU = 0
	}
	in.Current = pacerv1.Settings{
		Replicas: i32(1, 30), MaxInFlight: i32(1, 80), QueueDepth: 256, PoolMinConns: 2,
		PoolMaxConns: i32(1, 50), CacheMaxEntries: i32(1, 70),
	}
	// The API server's rule: replicas.max × the smallest allowed pool
	// size must fit the budget.
	if b := in.Tuning.Bounds; in.MaxTotalConnections > 0 && b.Replicas != nil {
		pmin := in.Current.PoolMaxConns
		if b.PoolMaxConns != nil {
			pmin = b.PoolMaxConns.Min
		}
		in.MaxTotalConnections = max(in.MaxTotalConnections, b.Replicas.Max*pmin)
	}
	mk := func(end time.Time) Window {
		w := healthy(end)
		w.Pods = int(in.Current.Replicas) - r.IntN(2)
		w.RequestRate = f(0, 5000)
		w.ErrorRate = f(0, 1) * w.RequestRate * float64(r.IntN(2))
		w.ShedRate = w.ErrorRate * f(0, 1)
		w.P99 = time.Duration(f(0, 2) * float64(time.Second))
		w.InFlight = f(0, float64(in.Current.MaxInFlight))
		w.QueueLength = f(0, 50) * float64(r.IntN(2))
		w.WorkerLimit = int(in.Current.MaxInFlight)
		w.PoolMaxConns = int(in.Current.PoolMaxConns)
		w.PoolAcquired = f(0, float64(in.Current.PoolMaxConns))
		w.PoolAcquireWait = time.Duration(f(0, 50) * float64(time.Millisecond))
		w.CacheHitRatio = f(0, 1)
		w.CacheLookupRate = w.RequestRate
		w.CacheEvictionRate = f(0, 1) * w.CacheLookupRate
		w.CacheEntries = f(0, float64(in.Current.CacheMaxEntries))
		w.CPUCores = f(0, 2.2)
		w.Sufficient = r.IntN(10) > 0
		return w
	}
	if r.IntN(3) == 0 {
		// A change still rolling out: pods may hold more.
		in.Rollout = Rollout{Replicas: i32(0, 30), PoolMaxConns: i32(0, 50)}
	}
	in.Window = mk(t0)
	in.Recent = nil
	for i := range r.IntN(30) {
		in.Recent = append(in.Recent, mk(t0.Add(-time.Duration(i+1)*iv)))
	}
	for i := range r.IntN(4) {
		s := []string{SettingReplicas, SettingWorkers, SettingPool, SettingCache}[r.IntN(4)]
		from := i32(1, 40)
		reason := "x"
		if r.IntN(4) == 0 {
			reason = RevertPrefix + "x"
		}
		in.History = append(in.History, pacerv1.Decision{
			Time: metav1.NewTime(t0.Add(-time.Duration(i*20+r.IntN(20)) * time.Second)), Mode: pacerv1.TuningAuto,
			Applied: r.IntN(3) > 0, Changes: []pacerv1.Change{{Setting: s, From: from, To: get(in.Current, s), Reason: reason}},
		})
	}
	return in
}

func inside(v int32, b *pacerv1.Int32Range) bool { return b == nil || (v >= b.Min && v <= b.Max) }

// toward says whether to is between from (outside the bounds) and the bounds.
func toward(from, to int32, b *pacerv1.Int32Range) bool {
	return (from < b.Min && to > from && to < b.Min) || (from > b.Max && to < from && to > b.Max)
}

// TestDecideProperties checks, over many seeded random inputs, what must
// hold whatever the metrics say.
func TestDecideProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 2026))
	for n := range 5000 {
		in := randomInput(r)
		d := Decide(in)
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("input %d: "+format+"\ninput: %+v\ndecision: %+v", append([]any{n}, append(args, in, d)...)...)
		}
		if again := Decide(in); !cmp.Equal(d, again) {
			fail("not deterministic: %v", cmp.Diff(d, again))
		}
		if d.Summary == "" {
			fail("empty summary")
		}
		b := in.Tuning.Bounds
		for _, s := range []struct {
			name string
			b    *pacerv1.Int32Range
		}{{SettingReplicas, b.Replicas}, {SettingWorkers, b.Workers}, {SettingPool, b.PoolMaxConns}, {SettingCache, b.CacheMaxEntries}} {
			from, to := get(in.Current, s.name), get(d.Settings, s.name)
			switch {
			case s.b == nil && from != to:
				fail("%s has no bounds but changed %d → %d", s.name, from, to)
			case from != to && !inside(to, s.b) && !toward(from, to, s.b):
				fail("%s left its bounds: %d → %d, bounds %+v", s.name, from, to, *s.b)
			case inside(from, s.b) && !inside(to, s.b):
				fail("%s left its bounds", s.name)
			}
		}
		// Settings that are not tuned at all never change.
		if d.Settings.QueueDepth != in.Current.QueueDepth || d.Settings.PoolMinConns != in.Current.PoolMinConns ||
			d.Settings.RateLimitRPS != in.Current.RateLimitRPS || d.Settings.RateLimitBurst != in.Current.RateLimitBurst {
			fail("an untuned field changed")
		}
		// The budget: never exceeded by a decision when it can be met
		// within the bounds, and never made worse.
		if B := int64(in.MaxTotalConnections); B > 0 {
			before := int64(in.Current.Replicas) * int64(in.Current.PoolMaxConns)
			after := int64(d.Settings.Replicas) * int64(d.Settings.PoolMaxConns)
			if after > B && after > before {
				fail("budget %d: %d connections, up from %d", B, after, before)
			}
			if after > B && fixable(in) {
				fail("budget %d exceeded (%d) though the bounds allow meeting it", B, after)
			}
		}
		// While the change rolls out the pods may hold max(replicas
		// before, after) × max(pool before, after): a rise must fit that.
		if B := int64(in.MaxTotalConnections); B > 0 {
			oldR, oldP := max(in.Current.Replicas, in.Rollout.Replicas), max(in.Current.PoolMaxConns, in.Rollout.PoolMaxConns)
			r, p := d.Settings.Replicas, d.Settings.PoolMaxConns
			if r > oldR && int64(r)*int64(max(oldP, p)) > B {
				fail("replicas rose %d → %d while pods may hold pool %d: %d > budget %d", in.Current.Replicas, r, oldP, int64(r)*int64(max(oldP, p)), B)
			}
			if p > oldP && int64(max(oldR, r))*int64(p) > B {
				fail("pool rose %d → %d while %d pods may hold connections: %d > budget %d", in.Current.PoolMaxConns, p, oldR, int64(max(oldR, r))*int64(p), B)
			}
		}
		// Changes list exactly the settings that differ, with reasons.
		seen := map[string]bool{}
		for _, c := range d.Changes {
			if c.Reason == "" || c.From == c.To || get(in.Current, c.Setting) != c.From || get(d.Settings, c.Setting) != c.To {
				fail("bad change %+v", c)
			}
			seen[c.Setting] = true
		}
		for _, t := range Tunables {
			s := t.Name
			if (get(in.Current, s) != get(d.Settings, s)) != seen[s] {
				fail("%s differs without a change entry, or the reverse", s)
			}
		}
		if ModeOf(in.Tuning.Mode) == pacerv1.TuningDisabled && len(d.Changes) > 0 {
			fail("changes in mode Off")
		}
	}
}

// fixable says whether replicas × pool can be brought within the budget
// by moving only tuned settings within their bounds.
func fixable(in Input) bool {
	b := in.Tuning.Bounds
	r, p := in.Current.Replicas, in.Current.PoolMaxConns
	if b.Replicas != nil {
		r = min(r, b.Replicas.Max)
		r = max(r, b.Replicas.Min)
		if b.PoolMaxConns == nil {
			r = b.Replicas.Min
		}
	}
	if b.PoolMaxConns != nil {
		p = b.PoolMaxConns.Min
	}
	if b.Replicas != nil && b.PoolMaxConns != nil {
		r = min(r, max(b.Replicas.Min, in.Current.Replicas))
	}
	return int64(r)*int64(p) <= int64(in.MaxTotalConnections)
}

// TestDecideOffAndHoldsNeverChange checks that mode Off holds everything and
// an untrustworthy window changes nothing but what bounds and budget demand.
func TestDecideOffAndHoldsNeverChange(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	for range 2000 {
		in := randomInput(r)
		switch r.IntN(3) {
		case 0:
			in.Tuning.Mode = pacerv1.TuningOff
		case 1:
			in.Window.Sufficient = false
		case 2:
			in.Now = in.Window.End.Add(3 * iv)
		}
		d := Decide(in)
		if ModeOf(in.Tuning.Mode) == pacerv1.TuningDisabled && (d.Settings != in.Current || len(d.Changes) > 0) {
			t.Fatalf("changed in mode Off: %+v", d)
		}
		for _, c := range d.Changes {
			if !strings.Contains(c.Reason, "outside tuning.bounds") && !strings.Contains(c.Reason, "connection budget") {
				t.Fatalf("changed while it must hold, for neither bounds nor budget: %+v", c)
			}
		}
		if !strings.HasPrefix(d.Summary, "Holding: ") && !strings.HasPrefix(d.Summary, "tuning.mode is Off") {
			t.Fatalf("summary does not say it holds: %s", d.Summary)
		}
	}
}
