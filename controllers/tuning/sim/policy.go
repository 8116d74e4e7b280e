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

// Scenario is what every policy of a scorecard shares: the model, the
// TunedService's tuning section and budget, and the settings to start from.
type Scenario struct {
	Model  Model
	Tuning pacerv1.TuningSpec
	Budget int32
	Start  pacerv1.Settings
	Seed   uint64
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
		Seed: 5,
	}
}

func (sc Scenario) interval() time.Duration { return sc.Tuning.Interval.Duration }

// Policy chooses settings at the end of every interval.
type Policy interface {
	Name() string
	// Start returns the settings the service starts with.
	Start(sc Scenario) pacerv1.Settings
	// Decide sees what tuning.Decide sees.
	Decide(in tuning.Input) tuning.Decision
}

// Pacer is the real tuner.
type Pacer struct{}

func (Pacer) Name() string                           { return "pacer" }
func (Pacer) Start(sc Scenario) pacerv1.Settings     { return sc.Start }
func (Pacer) Decide(in tuning.Input) tuning.Decision { return tuning.Decide(in) }

// PacerNoCPU is the real tuner without Input.PodCPU, as for pods with
// neither a CPU limit nor a CPU request.
type PacerNoCPU struct{}

func (PacerNoCPU) Name() string                       { return "pacer-no-podcpu" }
func (PacerNoCPU) Start(sc Scenario) pacerv1.Settings { return sc.Start }
func (PacerNoCPU) Decide(in tuning.Input) tuning.Decision {
	in.PodCPU = 0
	return tuning.Decide(in)
}

// Static never changes its settings.
type Static struct {
	Label    string
	Settings pacerv1.Settings
}

func (s Static) Name() string                           { return s.Label }
func (s Static) Start(Scenario) pacerv1.Settings        { return s.Settings }
func (s Static) Decide(in tuning.Input) tuning.Decision { return tuning.Decision{Settings: in.Current} }

// HPALike scales replicas on CPU use against the target utilization, as
// the HorizontalPodAutoscaler does (10% tolerance; scale-up by at most
// max(100%, 4 pods) per interval; scale-down to the highest
// recommendation of the scale-down window), with the start settings'
// workers, pool and cache left as they are.
type HPALike struct{}

func (HPALike) Name() string                       { return "hpa-like" }
func (HPALike) Start(sc Scenario) pacerv1.Settings { return sc.Start }

func (HPALike) Decide(in tuning.Input) tuning.Decision {
	target := 0.7
	if u := in.Tuning.Objective.TargetUtilization; u != nil {
		target = float64(*u) / 100
	}
	rec := func(w tuning.Window, cur int32) int32 {
		if w.Pods <= 0 || in.PodCPU <= 0 {
			return cur
		}
		ratio := w.CPUCores / in.PodCPU / target
		if math.Abs(ratio-1) <= 0.1 {
			return int32(w.Pods)
		}
		return int32(math.Ceil(float64(w.Pods) * ratio))
	}
	cur := in.Current
	want := rec(in.Window, cur.Replicas)
	if int(cur.Replicas) != in.Window.Pods && want > cur.Replicas {
		want = cur.Replicas // pods still starting
	}
	down := 5 * time.Minute
	if s := in.Tuning.Stabilization.ScaleDown; s != nil {
		down = s.Duration
	}
	if want < cur.Replicas {
		for _, w := range in.Recent {
			if in.Now.Sub(w.End) >= down {
				break
			}
			want = max(want, rec(w, cur.Replicas))
		}
		want = min(want, cur.Replicas)
	}
	want = min(want, max(2*cur.Replicas, cur.Replicas+4))
	if b := in.Tuning.Bounds.Replicas; b != nil {
		want = min(max(want, b.Min), b.Max)
	}
	next := cur
	next.Replicas = want
	d := tuning.Decision{Settings: next}
	if want != cur.Replicas {
		d.Changes = []pacerv1.Change{{Setting: tuning.SettingReplicas, From: cur.Replicas, To: want,
			Reason: fmt.Sprintf("CPU %.2f of %.1f cores", in.Window.CPUCores, in.PodCPU)}}
	}
	return d
}
