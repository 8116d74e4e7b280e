package tuning

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const iv = 15 * time.Second

// healthy is a window of 4 pods serving 1500 req/s well inside a 100ms
// objective, at 70% of their 2 cores: nothing should change.
func healthy(end time.Time) Window {
	return Window{
		Start: end.Add(-iv), End: end, Pods: 4, Generation: 3,
		RequestRate: 1500, P50: 8 * time.Millisecond, P95: 20 * time.Millisecond, P99: 30 * time.Millisecond,
		InFlight: 2.8, WorkerLimit: 8, Utilization: 0.35,
		PoolMaxConns: 8, PoolAcquired: 1.7, PoolAcquireWait: 100 * time.Microsecond,
		CacheHitRatio: 0.6, CacheLookupRate: 1500, CacheEvictionRate: 10, CacheEntries: 7900,
		CPUCores: 1.4, Sufficient: true,
	}
}

// history is n windows like w, ending one interval apart before w.
func history(w Window, n int) []Window {
	out := make([]Window, n)
	for i := range out {
		x := w
		x.End = w.End.Add(-time.Duration(i+1) * iv)
		x.Start = x.End.Add(-iv)
		out[i] = x
	}
	return out
}

func spec() pacerv1.TuningSpec {
	return pacerv1.TuningSpec{
		Mode:     pacerv1.TuningAuto,
		Interval: &metav1.Duration{Duration: iv},
		Objective: pacerv1.ObjectiveSpec{
			LatencyP99:        &metav1.Duration{Duration: 100 * time.Millisecond},
			TargetUtilization: ptr.To[int32](70),
		},
		Bounds: pacerv1.TuningBounds{
			Replicas:        &pacerv1.Int32Range{Min: 1, Max: 20},
			Workers:         &pacerv1.Int32Range{Min: 2, Max: 256},
			PoolMaxConns:    &pacerv1.Int32Range{Min: 2, Max: 32},
			CacheMaxEntries: &pacerv1.Int32Range{Min: 1000, Max: 64000},
		},
		Stabilization: pacerv1.StabilizationSpec{
			ScaleUp:   &metav1.Duration{Duration: 0},
			ScaleDown: &metav1.Duration{Duration: 5 * time.Minute},
		},
	}
}

// input is a healthy steady state with 10 minutes of identical history.
func input() Input {
	w := healthy(t0)
	return Input{
		Now:                 t0.Add(time.Second),
		Tuning:              spec(),
		MaxTotalConnections: 80,
		Current:             pacerv1.Settings{Replicas: 4, MaxInFlight: 8, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 8, CacheMaxEntries: 8000},
		Window:              w,
		Recent:              history(w, 40),
		PodCPU:              2,
	}
}

// applied is a status.history entry for one applied change at t.
func applied(t time.Time, c ...pacerv1.Change) pacerv1.Decision {
	return pacerv1.Decision{Time: metav1.NewTime(t), Mode: pacerv1.TuningAuto, Applied: true, Changes: c}
}

// all applies f to the latest window and every recent one.
func all(in *Input, f func(*Window)) {
	f(&in.Window)
	for i := range in.Recent {
		f(&in.Recent[i])
	}
}

// latest applies f to the latest window and the recent ones that ended
// within d before it.
func latest(in *Input, d time.Duration, f func(*Window)) {
	f(&in.Window)
	for i := range in.Recent {
		if in.Window.End.Sub(in.Recent[i].End) < d {
			f(&in.Recent[i])
		}
	}
}
