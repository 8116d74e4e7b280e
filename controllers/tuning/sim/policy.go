package sim

import (
	"fmt"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// Scenario is what every policy of a run shares: the model, the
// TunedService's tuning section and budget, and the settings to start from.
type Scenario struct {
	Model  Model
	Tuning pacerv1.TuningSpec
	Budget int32
	Start  pacerv1.Settings
	Seed   uint64
	// NoCPULimit runs the pods without a CPU limit: they have the same
	// cores, but the tuner is not told how many.
	NoCPULimit bool
}

// DefaultScenario is the scorecard's scenario: a 100ms p99 objective at a
// 70% target, a 15s interval, the spec's default stabilization (scale-up
// 0s, scale-down 5m), every setting tuned within bounds, and a database
// that takes 80 connections.
func DefaultScenario() Scenario {
	m := DefaultModel()
	return Scenario{
		Model: m,
		Tuning: pacerv1.TuningSpec{
			Mode:     pacerv1.TuningAuto,
			Interval: &metav1.Duration{Duration: 15 * time.Second},
			Objective: pacerv1.ObjectiveSpec{
				LatencyP99:        &metav1.Duration{Duration: 100 * time.Millisecond},
				TargetUtilization: ptr.To[int32](70),
			},
			Bounds: pacerv1.TuningBounds{
				Replicas:        &pacerv1.Int32Range{Min: 1, Max: 16},
				Workers:         &pacerv1.Int32Range{Min: 2, Max: 256},
				PoolMaxConns:    &pacerv1.Int32Range{Min: 2, Max: 32},
				CacheMaxEntries: &pacerv1.Int32Range{Min: 1000, Max: 64000},
			},
			Stabilization: pacerv1.StabilizationSpec{
				ScaleUp:   &metav1.Duration{Duration: 0},
				ScaleDown: &metav1.Duration{Duration: 5 * time.Minute},
			},
		},
		Budget: int32(m.MaxConnections),
		Start: pacerv1.Settings{
			Replicas: 4, MaxInFlight: 64, QueueDepth: int32(m.QueueDepth),
			PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 4000,
		},
		Seed: 1,
	}
}

func (sc Scenario) interval() time.Duration { return sc.Tuning.Interval.Duration }

func (sc Scenario) target() float64 {
	if u := sc.Tuning.Objective.TargetUtilization; u != nil && *u > 0 {
		return float64(*u) / 100
	}
	return 0.7
}

func (sc Scenario) scaleDown() time.Duration {
	if s := sc.Tuning.Stabilization.ScaleDown; s != nil {
		return s.Duration
	}
	return 5 * time.Minute
}

func (sc Scenario) clampReplicas(n int32) int32 {
	if b := sc.Tuning.Bounds.Replicas; b != nil {
		return min(max(n, b.Min), b.Max)
	}
	return max(n, 1)
}

// baselineMax is the maxReplicas a careful operator gives an autoscaler
// beside a database: the connection budget over every connection a pod
// opens, within the replica bounds.
func (sc Scenario) baselineMax(pool int32) int32 {
	hi := int32(math.MaxInt32)
	if b := sc.Tuning.Bounds.Replicas; b != nil {
		hi = b.Max
	}
	if sc.Budget > 0 {
		hi = min(hi, int32(int64(sc.Budget)/tuning.PodConnections(pool)))
	}
	return max(hi, 1)
}

// clampBaseline keeps a baseline's replicas within its bounds and its maxReplicas.
func (sc Scenario) clampBaseline(n, pool int32) int32 {
	return min(sc.clampReplicas(n), sc.baselineMax(pool))
}

// Policy is a way of choosing settings; Start makes a fresh, stateful
// controller for one run.
type Policy interface {
	Name() string
	// Start returns the settings the service starts with and the
	// controller that changes them.
	Start(sc Scenario) (pacerv1.Settings, Controller)
}

// Controller is called after every simulated second. Step.Window is set
// at the end of each interval, when the operator would observe.
type Controller interface {
	Step(s Step) tuning.Decision
}

// Step is what a controller sees after one simulated second.
type Step struct {
	Now     time.Time
	Current pacerv1.Settings
	// Ready is the number of ready pods; Concurrency the requests in them
	// (in flight and queued, all pods), as Knative's queue-proxy counts.
	Ready       int
	Concurrency float64
	// CPU is the mean CPU use of a ready pod this second, in cores, as
	// metrics-server would average it.
	CPU float64
	// Terminating is the removed pods still holding their connections.
	Terminating int
	// Window is the operator's observation, at the end of each of its
	// windows (an interval, or the tuner's ObservePeriod of one).
	Window *tuning.Window
}

func hold(s Step) tuning.Decision { return tuning.Decision{Settings: s.Current} }

// Static never changes its settings.
type Static struct {
	Label    string
	Settings pacerv1.Settings
}

func (s Static) Name() string                                  { return s.Label }
func (s Static) Start(Scenario) (pacerv1.Settings, Controller) { return s.Settings, staticCtl{} }

type staticCtl struct{}

func (staticCtl) Step(s Step) tuning.Decision { return hold(s) }

// Fixed are the per-pod settings a baseline autoscaler runs with: it
// scales replicas only. The scorecard searches a grid for the best.
type Fixed struct {
	Workers, Pool, Cache int32
	// Target is kpa-like's target of requests per pod (Knative's
	// autoscaling.knative.dev/target); 0 means 70% of Workers.
	Target float64
}

func (f Fixed) settings(sc Scenario) pacerv1.Settings {
	s := sc.Start
	s.MaxInFlight, s.PoolMaxConns, s.CacheMaxEntries = f.Workers, f.Pool, f.Cache
	return s
}

func (f Fixed) String() string {
	s := fmt.Sprintf("maxInFlight=%d poolMaxConns=%d cacheMaxEntries=%d", f.Workers, f.Pool, f.Cache)
	if f.Target > 0 {
		s += fmt.Sprintf(" target=%g", f.Target)
	}
	return s
}

// HPALike scales replicas on CPU use against the target utilization, as
// the HorizontalPodAutoscaler does on its own 15 s sync period, whatever
// the TunedService's interval, from CPU averaged as metrics-server does:
// 10% tolerance; pods not ready are not counted and hold scale-ups;
// scale-up by at most max(100%, 4 pods); scale-down to the highest
// recommendation of the scale-down window. Workers, pool and cache stay at
// Fixed; maxReplicas is the connection budget over a pod's connections,
// as a careful operator sets it.
type HPALike struct{ Fixed Fixed }

// hpaSync is the HPA controller's --horizontal-pod-autoscaler-sync-period.
const hpaSync = 15

func (HPALike) Name() string { return "hpa-like" }
func (h HPALike) Start(sc Scenario) (pacerv1.Settings, Controller) {
	return h.Fixed.settings(sc), &hpaCtl{sc: sc, pool: h.Fixed.Pool}
}

type hpaCtl struct {
	sc   Scenario
	pool int32
	recs []timedRec // newest last
	cpu  []float64  // per-second CPU per ready pod since the last sync
	n    int
}

type timedRec struct {
	at  time.Time
	rec int32
}

func (h *hpaCtl) Step(s Step) tuning.Decision {
	if s.Ready > 0 {
		h.cpu = append(h.cpu, s.CPU)
	}
	h.n++
	if h.n%hpaSync != 0 || len(h.cpu) == 0 {
		return hold(s)
	}
	cores := mean(h.cpu)
	h.cpu = h.cpu[:0]
	cur := s.Current
	podCPU := h.sc.Model.PodCores
	ratio := cores / podCPU / h.sc.target()
	want := int32(s.Ready)
	if math.Abs(ratio-1) > 0.1 {
		want = int32(math.Ceil(float64(s.Ready) * ratio))
	}
	if int(cur.Replicas) != s.Ready && want > cur.Replicas {
		want = cur.Replicas // pods still starting
	}
	h.recs = append(h.recs, timedRec{s.Now, want})
	down := h.sc.scaleDown()
	for len(h.recs) > 0 && s.Now.Sub(h.recs[0].at) > down {
		h.recs = h.recs[1:]
	}
	if want < cur.Replicas {
		for _, r := range h.recs {
			want = max(want, r.rec)
		}
		want = min(want, cur.Replicas)
	}
	want = h.sc.clampBaseline(min(want, max(2*cur.Replicas, cur.Replicas+4)), h.pool)
	return replicasTo(cur, want, fmt.Sprintf("CPU %.2f of %.1f cores", cores, podCPU))
}

func replicasTo(cur pacerv1.Settings, want int32, why string) tuning.Decision {
	next := cur
	next.Replicas = want
	d := tuning.Decision{Settings: next}
	if want != cur.Replicas {
		d.Changes = []pacerv1.Change{{Setting: tuning.SettingReplicas, From: cur.Replicas, To: want, Reason: why}}
		d.Summary = fmt.Sprintf("replicas %d → %d: %s", cur.Replicas, want, why)
	}
	return d
}

// KPALike is Knative's KPA with its defaults: every 2 s it averages the
// requests in the pods over a 60 s stable and a 6 s panic window against
// a target per pod (Fixed.Target, else 70% of maxInFlight: container
// concurrency × target utilization); it panics when the panic window needs at least twice the
// ready pods, then never scales down until 60 s pass without that; a
// scale-down at most halves. Workers, pool and cache stay at Fixed.
type KPALike struct{ Fixed Fixed }

const (
	kpaTick   = 2
	kpaStable = 60
	kpaPanic  = 6
)

func (KPALike) Name() string { return "kpa-like" }
func (k KPALike) Start(sc Scenario) (pacerv1.Settings, Controller) {
	target := k.Fixed.Target
	if target <= 0 {
		target = sc.target() * float64(k.Fixed.Workers)
	}
	return k.Fixed.settings(sc), &kpaCtl{sc: sc, target: math.Max(0.1, target), pool: k.Fixed.Pool}
}

type kpaCtl struct {
	sc        Scenario
	pool      int32
	target    float64
	samples   []float64 // concurrency per second, newest last
	n         int
	panicking bool
	panicAt   int
}

func (k *kpaCtl) Step(s Step) tuning.Decision {
	k.samples = append(k.samples, s.Concurrency)
	if len(k.samples) > kpaStable {
		k.samples = k.samples[1:]
	}
	k.n++
	if k.n%kpaTick != 0 || s.Ready == 0 {
		return hold(s)
	}
	avg := func(n int) float64 {
		n = min(n, len(k.samples))
		var sum float64
		for _, c := range k.samples[len(k.samples)-n:] {
			sum += c
		}
		return sum / float64(n)
	}
	stable, panicC := avg(kpaStable), avg(kpaPanic)
	dStable := int32(math.Ceil(stable / k.target))
	dPanic := int32(math.Ceil(panicC / k.target))
	ready := int32(s.Ready)
	if float64(dPanic) >= 2*float64(ready) {
		if !k.panicking {
			k.panicking = true
		}
		k.panicAt = k.n
	} else if k.panicking && k.n-k.panicAt >= kpaStable {
		k.panicking = false
	}
	cur := s.Current
	want := dStable
	if k.panicking {
		want = max(dPanic, cur.Replicas)
	}
	want = max(want, (ready+1)/2) // max scale-down rate 2
	if want < cur.Replicas && ready < cur.Replicas {
		want = cur.Replicas // pods still starting
	}
	want = k.sc.clampBaseline(want, k.pool)
	mode := "stable"
	if k.panicking {
		mode = "panic"
	}
	return replicasTo(cur, want, fmt.Sprintf("%s: concurrency %.1f (60 s) / %.1f (6 s) against %.1f per pod", mode, stable, panicC, k.target))
}
