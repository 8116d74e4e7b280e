package tuning

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// move is a change without its reason, for cmp.Diff.
type move struct {
	Setting  string
	From, To int32
}

func moves(d Decision) []move {
	var out []move
	for _, c := range d.Changes {
		out = append(out, move{c.Setting, c.From, c.To})
	}
	return out
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Input)
		want  []move
		words []string // in the reasons (or the summary when nothing changes)
	}{
		{
			name:  "steady state holds",
			edit:  func(*Input) {},
			words: []string{"Holding: p99 30ms (objective 100ms)", "utilization 70% of target 70%"},
		},
		{
			name:  "mode Off changes nothing",
			edit:  func(in *Input) { in.Tuning.Mode = pacerv1.TuningOff; all(in, func(w *Window) { w.CPUCores = 2 }) },
			words: []string{"tuning.mode is Off"},
		},
		{
			name: "insufficient window holds",
			edit: func(in *Input) {
				in.Window.Sufficient, in.Window.Reason = false, "2 of 4 pods run generation 2"
				in.Window.CPUCores = 2
			},
			words: []string{"insufficient: 2 of 4 pods run generation 2"},
		},
		{
			name:  "stale window holds",
			edit:  func(in *Input) { in.Now = in.Window.End.Add(time.Minute); in.Window.CPUCores = 2 },
			words: []string{"ended 1m0s ago, more than 2 intervals"},
		},
		{
			name:  "pods on other settings hold",
			edit:  func(in *Input) { in.Window.WorkerLimit = 16; in.Window.CPUCores = 2 },
			words: []string{"pods still run maxInFlight 16, not 8"},
		},
		{
			// 4 × 56% / 70% = 3.2 pods: the HPA's rule keeps 4 (56%); 3
			// run at 75%, inside the band, where no rise follows while
			// p99 stays calm.
			name:  "a scale-down goes to the fewest pods that keep utilization within the band",
			edit:  func(in *Input) { all(in, func(w *Window) { w.CPUCores = 1.12 }) },
			want:  []move{{SettingReplicas, 4, 3}},
			words: []string{"utilization 56% against a 70% target", "replicas 4 → 3"},
		},
		{
			name:  "a service below its target says why it does not shrink",
			edit:  func(in *Input) { all(in, func(w *Window) { w.CPUCores = 1.2 }) },
			words: []string{"replicas stay at 4: utilization 60% against a 70% target, and 3 would run at 80%"},
		},
		{
			// Into the band only while p99 is calm: otherwise a rise
			// inside it would follow and undo the scale-down.
			name: "no scale-down into the band while p99 is not calm",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores, w.P99 = 1.12, 60*time.Millisecond })
			},
			words: []string{"replicas stay at 4: utilization 56% against a 70% target, and 3 would run at 75%"},
		},
		{
			// The noisiest window of the stable window decides how far
			// into the band a scale-down may go.
			name: "a scale-down into the band allows for the busiest window",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 1.12 })
				in.Recent[1].CPUCores = 1.25 // the mean, 1.15, would allow 3 pods
			},
			words: []string{"replicas stay at 4"},
		},
		{
			name: "one noisy window within twice the tolerance does not scale up while p99 is calm",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 1.5 })
				in.Window.CPUCores = 1.65
			},
			words: []string{"of target 70% is within 10%"},
		},
		{
			name: "a rise inside the band near the objective waits while the pool grows",
			edit: func(in *Input) {
				in.Tuning.Bounds.Workers, in.Current.MaxInFlight = nil, 32
				all(in, func(w *Window) {
					w.CPUCores, w.P99, w.WorkerLimit = 1.5, 85*time.Millisecond, 32
					w.PoolAcquired, w.PoolAcquireWait = 7, 5*time.Millisecond
				})
			},
			want: []move{{SettingPool, 8, 14}},
		},
		{
			name: "a rise near the objective inside the band scales up",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores, w.P99 = 1.5, 85*time.Millisecond })
			},
			want:  []move{{SettingReplicas, 4, 5}},
			words: []string{"replicas 4 → 5"},
		},
		{
			name:  "a small error is inside the tolerance band",
			edit:  func(in *Input) { all(in, func(w *Window) { w.CPUCores = 1.5 }) },
			words: []string{"utilization 75% of target 70% is within 10%"},
		},
		{
			name:  "replicas follow CPU over the stable window",
			edit:  func(in *Input) { all(in, func(w *Window) { w.CPUCores = 1.9 }) },
			want:  []move{{SettingReplicas, 4, 6}},
			words: []string{"stable 1m0s window: utilization 95% against a 70% target", "CPU 1.9 of 2 cores", "replicas 4 → 6"},
		},
		{
			name: "requests refused by the rate limit are not demand",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.RequestRate, w.RateLimitedRate, w.ErrorRate = 2500, 1000, 0 })
			},
			words: []string{"utilization 70% of target 70% is within 10%"},
		},
		{
			name: "the panic window wins when the latest window violates the objective",
			edit: func(in *Input) {
				in.Window.CPUCores, in.Window.P99 = 2, 250*time.Millisecond
				in.Window.ErrorRate, in.Window.ShedRate, in.Window.RequestRate = 500, 500, 2000
			},
			want:  []move{{SettingReplicas, 4, 8}},
			words: []string{"panic window", "25% of requests refused or failed", "replicas 4 → 8"},
		},
		{
			name: "a load that rose in every window of the stable window is met where it is heading",
			edit: func(in *Input) {
				for i, rate := range []float64{1400, 1300, 1200} {
					in.Recent[i].RequestRate, in.Recent[i].CPUCores = rate, rate*1.4/1500
				}
			},
			want:  []move{{SettingReplicas, 4, 5}},
			words: []string{"load rising 6.7 req/s per second", "replicas 4 → 5"},
		},
		{
			// 1410 → 1500 rose in every window, by 6%: arrival noise
			// does that one time in 24.
			name: "a rise under 10% across the stable window is noise, not a trend",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 1.5 })
				for i, rate := range []float64{1470, 1440, 1410} {
					in.Recent[i].RequestRate, in.Recent[i].CPUCores = rate, rate*1.5/1500
				}
			},
			words: []string{"utilization 7"},
		},
		{
			name: "a rise that did not hold in every window is not projected",
			edit: func(in *Input) {
				for i, rate := range []float64{1400, 1450, 1200} {
					in.Recent[i].RequestRate, in.Recent[i].CPUCores = rate, rate*1.4/1500
				}
			},
			words: []string{"utilization 65% of target 70% is within 10%"},
		},
		{
			// A new pod config would leave the next windows untrusted
			// (pods on mixed configs) while the new pods start.
			name: "a scale-up answering a violation changes no pod config",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 64
				all(in, func(w *Window) { w.WorkerLimit = 64 })
				in.Window.InFlight, in.Window.CPUCores, in.Window.P99 = 60, 2, 400*time.Millisecond
			},
			want:  []move{{SettingReplicas, 4, 6}},
			words: []string{"replicas 4 → 6"},
		},
		{
			// Pods still starting count as capacity; the rate says the
			// crowd outgrew them too.
			name: "while pods start, a demand beyond all of them scales further",
			edit: func(in *Input) {
				in.Current.Replicas = 8
				in.History = []pacerv1.Decision{applied(t0.Add(-20*time.Second), pacerv1.Change{Setting: SettingReplicas, From: 4, To: 8})}
				in.Window.CPUCores, in.Window.P99, in.Window.InFlight = 2, 600*time.Millisecond, 8
				in.Window.ErrorRate, in.Window.ShedRate, in.Window.RequestRate = 1500, 1500, 6000
				in.MaxTotalConnections = 0
			},
			want:  []move{{SettingReplicas, 8, 16}},
			words: []string{"4 of 8 pods ready, and 6000 req/s at 3.7ms of CPU a request need 16 pods at 70% of 2 cores"},
		},
		{
			name: "while pods start, a demand they will carry waits for them",
			edit: func(in *Input) {
				in.Current.Replicas = 8
				in.History = []pacerv1.Decision{applied(t0.Add(-20*time.Second), pacerv1.Change{Setting: SettingReplicas, From: 4, To: 8})}
				in.Window.CPUCores, in.Window.P99, in.Window.InFlight = 2, 600*time.Millisecond, 8
				in.Window.ErrorRate, in.Window.ShedRate, in.Window.RequestRate = 500, 500, 2500
			},
		},
		{
			name: "the cache waits while the pods run above the target",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores, w.CacheEvictionRate = 1.5, 300 })
			},
			words: []string{"cacheMaxEntries waits while the pods run above the target (75% of 70%)"},
		},
		{
			// 5 pods failed the bursts' 3000 req/s 7.5 minutes ago and 7
			// served them: one more than failed (6) would fail again.
			name: "after a failed burst, a scale-down stops at the fewest pods that served it",
			edit: func(in *Input) {
				in.Current.Replicas = 9
				all(in, func(w *Window) { w.Pods, w.RequestRate, w.CPUCores = 9, 3000, 0.7 })
				in.Recent[29].Pods, in.Recent[29].CPUCores, in.Recent[29].P99 = 5, 2, 600*time.Millisecond
				in.Recent[29].ShedRate, in.Recent[29].ErrorRate = 300, 300
				in.Recent[24].Pods, in.Recent[24].CPUCores = 7, 1.4
			},
			want:  []move{{SettingReplicas, 9, 7}},
			words: []string{"5 pods violated the objective at 3000 req/s within the last 1h0m0s and that load still recurs; 7 served it within the objective"},
		},
		{
			// What an idle window shows in use is the idle load's; the
			// pool and cache are kept for the load's return (idle trace:
			// 3 reversals for 2 load changes). Replicas still fall.
			name: "a low-demand window shrinks the replicas, not the pool or the cache",
			edit: func(in *Input) {
				all(in, func(w *Window) {
					w.RequestRate, w.CPUCores, w.InFlight, w.P50, w.P95, w.P99 = 1, 0.002, 0.01, 0, 0, 0
					w.PoolAcquired, w.CacheLookupRate, w.CacheEvictionRate, w.CacheEntries = 0.003, 1, 0, 44
				})
			},
			want:  []move{{SettingReplicas, 4, 2}},
			words: []string{"replicas 4 → 2"},
		},
		{
			name: "a low-demand window does not shrink the cache",
			edit: func(in *Input) {
				in.Tuning.Bounds.Replicas = nil
				all(in, func(w *Window) {
					w.RequestRate, w.CPUCores, w.InFlight, w.P50, w.P95, w.P99 = 1, 0.002, 0.01, 0, 0, 0
					w.PoolAcquired, w.CacheLookupRate, w.CacheEvictionRate, w.CacheEntries = 3, 1, 0, 44
				})
			},
			words: []string{"cacheMaxEntries holds: a low-demand window (p99 not measured) does not size it"},
		},
		{
			// 8 → 7 was applied at the start of most scorecard traces, and
			// grown back when the load rose: a config rollout and a
			// reversal for one connection.
			name:  "a pool cut of one connection is not rolled out",
			edit:  func(in *Input) { all(in, func(w *Window) { w.PoolAcquired = 1.3 }) },
			words: []string{"poolMaxConns 8 is within 20% of the 7 that 1.3 in use needs with room: too small a cut to roll out"},
		},
		{
			name: "one step per interval: in panic, at most four times the pods",
			edit: func(in *Input) {
				in.Window.CPUCores, in.Window.P99 = 2, 900*time.Millisecond
				in.Window.ErrorRate, in.Window.ShedRate, in.Window.RequestRate = 3000, 3000, 4500
			},
			// 16 pods at pool 5 fit the budget, but until every pod runs
			// pool 5 the running ones may keep 8: 10 × 8 fit now.
			want:  []move{{SettingReplicas, 4, 10}, {SettingPool, 8, 5}},
			words: []string{"replicas 4 → 10 now, more once every pod runs pool 5 (connection budget 80", "(wanted 18, capped by the step limit of ×2 or +4 per interval; up to 18 later)", "connection budget 80 over 16 replicas leaves 5 per pod"},
		},
		{
			name:  "without a CPU figure, scale-downs stop at the per-pod rate seen within objective",
			edit:  func(in *Input) { in.PodCPU = 0 },
			words: []string{"without a CPU figure, replicas go no lower than", "the 375 req/s per pod seen within objective"},
		},
		{
			name: "without a CPU figure, replicas follow the worker slots",
			edit: func(in *Input) {
				in.PodCPU = 0
				all(in, func(w *Window) { w.InFlight = 7.5 })
			},
			want:  []move{{SettingReplicas, 4, 6}},
			words: []string{"7.5 of 8 workers busy"},
		},
		{
			name: "scale-up stabilization: a rise must hold for the whole scale-up window",
			edit: func(in *Input) {
				in.Tuning.Stabilization.ScaleUp = &metav1.Duration{Duration: time.Minute}
				latest(in, 30*time.Second, func(w *Window) { w.CPUCores = 1.9 })
			},
			words: []string{"replicas: a rise to 6 has not held for the 1m0s scale-up window"},
		},
		{
			name: "scale-up stabilization applies the lowest recommendation of the window",
			edit: func(in *Input) {
				in.Tuning.Stabilization.ScaleUp = &metav1.Duration{Duration: time.Minute}
				all(in, func(w *Window) { w.CPUCores = 1.7 })
				latest(in, 30*time.Second, func(w *Window) { w.CPUCores = 1.9 })
			},
			want: []move{{SettingReplicas, 4, 5}},
		},
		{
			name: "scale-down waits for the scale-down window",
			edit: func(in *Input) {
				latest(in, 2*time.Minute, func(w *Window) { w.CPUCores = 0.5 })
			},
			words: []string{"replicas: a fall to 2 has not held for the 5m0s scale-down window"},
		},
		{
			name: "scale-down goes to the highest recommendation of the window",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 0.5 })
				latest(in, 4*time.Minute, func(w *Window) { w.CPUCores = 0.3 })
				in.Recent[5].CPUCores = 0.8
			},
			want:  []move{{SettingReplicas, 4, 3}},
			words: []string{"the highest recommendation of the 5m0s scale-down window"},
		},
		{
			name: "scale-down needs history that covers the window",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 0.5 })
				in.Recent = in.Recent[:8]
			},
			words: []string{"replicas: a fall to 2 has held 2m16s of the 5m0s scale-down window"},
		},
		{
			name: "cooldown: no second change before a full window follows the last",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 1.9 })
				in.History = []pacerv1.Decision{applied(in.Window.Start.Add(5*time.Second), pacerv1.Change{Setting: SettingReplicas, From: 3, To: 4})}
			},
			words: []string{"replicas changed 11s ago: waiting for a full window after it"},
		},
		{
			name: "a setting without bounds is never tuned",
			edit: func(in *Input) {
				in.Tuning.Bounds.Replicas = nil
				all(in, func(w *Window) { w.CPUCores = 1.9 })
			},
		},
		{
			name:  "a value outside its bounds comes back inside",
			edit:  func(in *Input) { in.Tuning.Bounds.Workers = &pacerv1.Int32Range{Min: 10, Max: 64} },
			want:  []move{{SettingWorkers, 8, 10}},
			words: []string{"maxInFlight is outside tuning.bounds.workers [10, 64]"},
		},
		{
			name: "recommendations stop at the bounds",
			edit: func(in *Input) {
				in.Tuning.Bounds.Replicas = &pacerv1.Int32Range{Min: 1, Max: 5}
				all(in, func(w *Window) { w.CPUCores = 1.9 })
			},
			want: []move{{SettingReplicas, 4, 5}},
		},
		{
			name: "workers rise by Little's law when requests queue with CPU to spare",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 1.2 })
				in.Window.InFlight, in.Window.QueueLength, in.Window.P99 = 8, 6, 90*time.Millisecond
			},
			want:  []move{{SettingWorkers, 8, 12}},
			words: []string{"queue 6/pod while CPU 1.2 of 2 cores", "Little's law needs 8 in flight per pod: 375 req/s × 21ms, at 70% target"},
		},
		{
			name: "workers are cut at once when the CPU is saturated and p99 is over the objective",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 64
				in.Tuning.Bounds.Replicas.Max = 4 // no new pods to wait for
				all(in, func(w *Window) { w.WorkerLimit = 64 })
				in.Window.InFlight, in.Window.CPUCores, in.Window.P99 = 60, 2, 400*time.Millisecond
			},
			want:  []move{{SettingWorkers, 64, 16}},
			words: []string{"in-service time 160ms (baseline 7.5ms)", "60 of 64 workers busy", "maxInFlight 64 → 16"},
		},
		{
			name: "a worker limit far above what the pod carries is trimmed after the scale-down window",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 64
				all(in, func(w *Window) { w.WorkerLimit = 64 })
			},
			want:  []move{{SettingWorkers, 64, 16}},
			words: []string{"only 2.8 of 64 workers busy per pod with no queue", "maxInFlight 64 → 16 (wanted 12, capped by the step limit of one interval; down to 12 later)"},
		},
		{
			name: "a trim waits for the scale-down window",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 64
				latest(in, 2*time.Minute, func(w *Window) { w.WorkerLimit = 64 })
				for i := range in.Recent {
					if in.Recent[i].WorkerLimit != 64 {
						in.Recent[i].WorkerLimit, in.Recent[i].InFlight, in.Recent[i].QueueLength = 64, 40, 5
					}
				}
			},
			words: []string{"maxInFlight: a fall to 12 has not held for the 5m0s scale-down window"},
		},
		{
			name: "the pool grows when acquires wait",
			edit: func(in *Input) {
				in.Tuning.Bounds.Workers, in.Current.MaxInFlight = nil, 32
				all(in, func(w *Window) { w.WorkerLimit = 32 })
				in.Window.PoolAcquired, in.Window.PoolAcquireWait = 7.5, 12*time.Millisecond
			},
			want:  []move{{SettingPool, 8, 14}},
			words: []string{"acquire wait 12ms > 2ms with 7.5 of 8 connections in use per pod"},
		},
		{
			name: "the pool grows no further than one connection per worker",
			edit: func(in *Input) {
				in.Current.PoolMaxConns = 8
				in.Window.PoolAcquired, in.Window.PoolAcquireWait = 8, 50*time.Millisecond
			},
			words: []string{"the pool already has one connection per worker (8)"},
		},
		{
			name: "an idle pool shrinks after the scale-down window",
			edit: func(in *Input) {
				in.Current.PoolMaxConns = 32
				all(in, func(w *Window) { w.PoolMaxConns, w.PoolAcquired, w.PoolAcquireWait = 32, 1, 0 })
			},
			want:  []move{{SettingPool, 32, 16}},
			words: []string{"only 1 of 32 connections in use", "poolMaxConns 32 → 16 (wanted 5, capped by the step limit of one interval; down to 5 later)"},
		},
		{
			name: "scale-out shrinks pools first to keep the connection budget",
			edit: func(in *Input) {
				in.Current.PoolMaxConns = 16
				all(in, func(w *Window) { w.PoolMaxConns, w.CPUCores, w.PoolAcquired = 16, 1.9, 7 })
			},
			want:  []move{{SettingReplicas, 4, 5}, {SettingPool, 16, 13}},
			words: []string{"connection budget 80 over 6 replicas leaves 13 per pod", "replicas 4 → 5 now, more once every pod runs pool 13 (connection budget 80"},
		},
		{
			// 10 pods at pool 8 fit, but the 7 running pods keep pool 10
			// until their config arrives: 10 × 10 would pass 80.
			name: "a scale-out that cuts the pool adds only the pods that fit at the old pool",
			edit: func(in *Input) {
				in.Current.Replicas, in.Current.PoolMaxConns = 7, 10
				all(in, func(w *Window) { w.Pods, w.PoolMaxConns, w.CPUCores, w.PoolAcquired = 7, 10, 1.9, 3 })
			},
			want:  []move{{SettingReplicas, 7, 8}, {SettingPool, 10, 8}},
			words: []string{"replicas 7 → 8 now, more once every pod runs pool 8 (connection budget 80: until then running pods may keep pool 10, and 10 × 10 > 80)"},
		},
		{
			name: "while a pool cut rolls out, replicas wait for it",
			edit: func(in *Input) {
				in.Current.Replicas = 8
				in.Rollout = Rollout{Replicas: 7, PoolMaxConns: 10}
				all(in, func(w *Window) { w.Pods, w.CPUCores = 8, 1.75 })
			},
			words: []string{"replicas stay at 8 until every pod runs pool 8, then go toward 10 (connection budget 80: until then running pods may keep pool 10)"},
		},
		{
			name: "once the pool cut has rolled out, replicas follow",
			edit: func(in *Input) {
				in.Current.Replicas = 8
				all(in, func(w *Window) { w.Pods, w.CPUCores = 8, 1.75 })
			},
			want: []move{{SettingReplicas, 8, 10}},
		},
		{
			// The 10 pods being removed keep pool 6 until they go: the
			// pool may rise only as far as 10 pods fit.
			name: "a pool raise with a scale-in raises the pool only as far as the leaving pods allow",
			edit: func(in *Input) {
				in.Current = pacerv1.Settings{Replicas: 10, MaxInFlight: 16, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 6, CacheMaxEntries: 8000}
				all(in, func(w *Window) {
					w.Pods, w.WorkerLimit, w.InFlight, w.PoolMaxConns, w.CPUCores = 10, 16, 7, 6, 0.5
					w.PoolAcquired, w.PoolAcquireWait = 6, 12*time.Millisecond
				})
			},
			want:  []move{{SettingReplicas, 10, 6}, {SettingPool, 6, 8}},
			words: []string{"poolMaxConns 6 → 8 now, more once the pods being removed have gone (connection budget 80: until then 10 pods may hold connections, and 10 × 12 > 80)"},
		},
		{
			name: "scale-out is capped when pools cannot shrink further",
			edit: func(in *Input) {
				in.Current.PoolMaxConns = 16
				in.Tuning.Bounds.PoolMaxConns = &pacerv1.Int32Range{Min: 16, Max: 32}
				all(in, func(w *Window) { w.PoolMaxConns, w.CPUCores, w.PoolAcquired = 16, 1.9, 4 })
			},
			want:  []move{{SettingReplicas, 4, 5}},
			words: []string{"capped at 5 replicas by the connection budget 80 at 16 connections per pod"},
		},
		{
			name: "a pool growth is capped by the budget",
			edit: func(in *Input) {
				in.Tuning.Bounds.Workers, in.Current.MaxInFlight = nil, 32
				all(in, func(w *Window) { w.WorkerLimit = 32 })
				in.MaxTotalConnections = 40
				in.Window.PoolAcquired, in.Window.PoolAcquireWait = 7.5, 12*time.Millisecond
			},
			want:  []move{{SettingPool, 8, 10}},
			words: []string{"capped at 10, not 14: 4 replicas × 10 ≤ budget 40"},
		},
		{
			name:  "the cache doubles when it evicts and misses",
			edit:  func(in *Input) { in.Window.CacheEvictionRate = 400 },
			want:  []move{{SettingCache, 8000, 16000}},
			words: []string{"hit ratio 60% with 27% of lookups evicting an entry"},
		},
		{
			name:  "a cache far too big shrinks after the scale-down window",
			edit:  func(in *Input) { all(in, func(w *Window) { w.CacheEntries, w.CacheEvictionRate = 1500, 0 }) },
			want:  []move{{SettingCache, 8000, 4000}},
			words: []string{"the cache holds 1500 of 8000 entries per pod and evicts almost nothing: cacheMaxEntries 8000 → 4000 (wanted 3000, capped by the step limit of one interval; down to 3000 later)"},
		},
		{
			name:  "a cache-hostile load does not grow the cache",
			edit:  func(in *Input) { in.Window.CacheEvictionRate, in.Window.CacheHitRatio = 1400, 0.01 },
			words: []string{"keys barely repeat (cache-hostile)"},
		},
		{
			name: "a cache growth that did not help is not repeated",
			edit: func(in *Input) {
				in.History = []pacerv1.Decision{applied(in.Recent[3].End, pacerv1.Change{Setting: SettingCache, From: 4000, To: 8000})}
				latest(in, 45*time.Second, func(w *Window) { w.CacheHitRatio = 0.605 })
				in.Window.CacheEvictionRate = 400
			},
			words: []string{"the last growth 4000 → 8000 moved the hit ratio 60% → 60%"},
		},
		{
			name: "the cache waits while other settings change",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.CPUCores = 1.9 })
				in.Window.CacheEvictionRate = 400
			},
			want:  []move{{SettingReplicas, 4, 6}},
			words: []string{"replicas 4 → 6"},
		},
		{
			name: "a change that made p99 worse at the same load is reverted",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 16
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 8, To: 16, Reason: "x"})}
				in.Window.WorkerLimit, in.Window.P99 = 16, 140*time.Millisecond
			},
			want:  []move{{SettingWorkers, 16, 8}},
			words: []string{"revert: p99 rose 30ms → 140ms at the same load (1500 → 1500 req/s) after maxInFlight 8 → 16: back to 8"},
		},
		{
			name: "a revert is not reverted",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 16
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 8, To: 16, Reason: RevertPrefix + "x"})}
				in.Window.WorkerLimit, in.Window.P99 = 16, 140*time.Millisecond
			},
		},
		{
			name: "no revert when the load changed",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 16
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 8, To: 16, Reason: "x"})}
				in.Window.WorkerLimit, in.Window.P99, in.Window.RequestRate = 16, 140*time.Millisecond, 1800
			},
		},
		{
			name: "a scale-out is never reverted",
			edit: func(in *Input) {
				in.Current.Replicas = 5
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingReplicas, From: 4, To: 5, Reason: "x"})}
				in.Window.P99 = 140 * time.Millisecond
			},
			words: []string{"no scale-down to 4"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := input()
			tt.edit(&in)
			got := Decide(in)
			if diff := cmp.Diff(tt.want, moves(got)); diff != "" {
				t.Errorf("changes (-want +got):\n%s\nsummary: %s\nreasons: %v", diff, got.Summary, got.Changes)
			}
			text := got.Summary
			for _, c := range got.Changes {
				text += "\n" + c.Reason
			}
			for _, w := range tt.words {
				if !strings.Contains(text, w) {
					t.Errorf("missing %q in:\n%s", w, text)
				}
			}
			if got.Summary == "" {
				t.Error("empty summary")
			}
		})
	}
}
