package tuning

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

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

// The healthy steady state (helpers_test.go): 1500 req/s on 4 pods at 1.4
// of 2 cores, so 3.7ms of CPU a request and exactly the 70% target; 40%
// of requests query the database, holding a connection 11ms.

func TestDecide(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Input)
		want  []move
		words []string // in the reasons (or the summary when nothing changes)
		// limited: the decision says a bound keeps the objective out of reach.
		limited bool
	}{
		{
			name:  "steady state at the target holds",
			edit:  func(*Input) {},
			words: []string{"Holding: p99 30ms (objective 100ms)", "replicas stay at 4"},
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
			// 1500 req/s × 3.7ms = 5.6 cores busy; at 70% of 2 cores, 4
			// pods. The same cost at 2250 req/s needs 6.
			name: "replicas follow the demand at the CPU a request costs",
			edit: func(in *Input) {
				latest(in, time.Minute, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 2250, 2250, 2.0 })
			},
			want:  []move{{SettingReplicas, 4, 6}},
			words: []string{"2250 req/s arriving", "CPU per request", "on 2 cores (the CPU limit)", "replicas 4 → 6"},
		},
		{
			name: "requests refused by the rate limit are not demand",
			edit: func(in *Input) {
				latest(in, time.Minute, func(w *Window) { w.RequestRate, w.RateLimitedRate = 2250, 750 })
			},
		},
		{
			// 5× the demand on 4 pods is a panic: straight to the 19 pods
			// it needs, past the ×2-or-+4 step.
			name: "a panic goes to the demand's pods in one step",
			edit: func(in *Input) {
				in.MaxTotalConnections = 0
				in.Window.RequestRate, in.Window.CacheLookupRate, in.Window.ShedRate, in.Window.ErrorRate = 7500, 2500, 5000, 5000
				in.Window.CPUCores, in.Window.QueueLength, in.Window.P99 = 2, 200, 300*time.Millisecond
			},
			want:  []move{{SettingReplicas, 4, 20}},
			words: []string{"panic: demand 7500 req/s arriving"},
		},
		{
			// 5% more demand is inside the 10% band the fit's uncertainty
			// sets: no change.
			name: "a rise inside the uncertainty band holds",
			edit: func(in *Input) {
				latest(in, time.Minute, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 1575, 1575, 1.47 })
			},
		},
		{
			name: "scale-down waits until the windows cover the scale-down window",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 750, 750, 0.7 })
				in.Recent = in.Recent[:10] // 2.5 minutes
			},
			words: []string{"replicas 4 → 3 waits: 2m46s of the 5m0s scale-down window seen"},
		},
		{
			// Half the load for five minutes needs 2 pods; the busiest
			// window of the scale-down window is what a cut must carry.
			name: "scale-down goes to what the busiest window of the scale-down window needs",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 750, 750, 0.7 })
				in.Recent[8].RequestRate, in.Recent[8].CacheLookupRate, in.Recent[8].CPUCores = 1000, 1000, 0.93
			},
			want:  []move{{SettingReplicas, 4, 3}},
			words: []string{"the busiest window of the last 5m0s had 1000 req/s"},
		},
		{
			name: "no scale-down while the objective is missed",
			edit: func(in *Input) {
				all(in, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 750, 750, 0.7 })
				in.Window.P99 = 150 * time.Millisecond
			},
			words: []string{"replicas stay at 4 while the objective is missed"},
		},
		{
			name: "cooldown: no second change before a full window follows the last",
			edit: func(in *Input) {
				latest(in, time.Minute, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 2250, 2250, 2.0 })
				in.History = []pacerv1.Decision{applied(in.Window.Start.Add(time.Second), pacerv1.Change{Setting: SettingReplicas, From: 3, To: 4, Source: pacerv1.ChangeByTuner})}
			},
			words: []string{"replicas changed 15s ago: waiting for a full window after it"},
		},
		{
			name: "a setting without bounds is never tuned",
			edit: func(in *Input) {
				in.Tuning.Bounds.Replicas = nil
				latest(in, time.Minute, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 2250, 2250, 2.0 })
			},
		},
		{
			name:  "a value outside its bounds comes back inside",
			edit:  func(in *Input) { in.Tuning.Bounds.PoolMaxConns = &pacerv1.Int32Range{Min: 2, Max: 6} },
			want:  []move{{SettingPool, 8, 6}},
			words: []string{"poolMaxConns is outside tuning.bounds.poolMaxConns [2, 6]"},
		},
		{
			name: "at the bound while the objective is missed, the decision says Limited",
			edit: func(in *Input) {
				in.Tuning.Bounds.Replicas.Max = 4
				all(in, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 2250, 2250, 2.0 })
				in.Window.P99, in.Window.QueueLength = 180*time.Millisecond, 4
			},
			words:   []string{"replicas at tuning.bounds.replicas.max 4"},
			limited: true,
		},
		{
			name: "a change that made p99 worse at the same load is reverted",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 16
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 8, To: 16, Reason: "x", Source: pacerv1.ChangeByTuner})}
				in.Window.WorkerLimit, in.Window.P99 = 16, 140*time.Millisecond
			},
			want:  []move{{SettingWorkers, 16, 8}},
			words: []string{"revert: p99 rose 30ms → 140ms at the same load (1500 → 1500 req/s) after maxInFlight 8 → 16: back to 8"},
		},
		{
			name: "a cut is not blamed for a spike its resource did not feel",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 8
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 16, To: 8, Reason: "x", Source: pacerv1.ChangeByTuner})}
				in.Window.P99 = 140 * time.Millisecond // 2.8 of 8 workers busy, nothing queued
			},
		},
		{
			name: "a cut whose resource filled is reverted",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 3
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 8, To: 3, Reason: "x", Source: pacerv1.ChangeByTuner})}
				in.Window.WorkerLimit, in.Window.InFlight, in.Window.QueueLength, in.Window.P99 = 3, 2.9, 2, 140*time.Millisecond
			},
			want:  []move{{SettingWorkers, 3, 8}},
			words: []string{"revert: p99 rose 30ms → 140ms at the same load (1500 → 1500 req/s) after maxInFlight 8 → 3: back to 8"},
		},
		{
			name: "a revert is not reverted",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 16
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 8, To: 16, Reason: RevertPrefix + "x", Source: pacerv1.ChangeByRevert})}
				in.Window.WorkerLimit, in.Window.P99 = 16, 140*time.Millisecond
			},
		},
		{
			name: "no revert when the load changed",
			edit: func(in *Input) {
				in.Current.MaxInFlight = 16
				in.History = []pacerv1.Decision{applied(in.Window.Start, pacerv1.Change{Setting: SettingWorkers, From: 8, To: 16, Reason: "x", Source: pacerv1.ChangeByTuner})}
				in.Window.WorkerLimit, in.Window.P99, in.Window.RequestRate = 16, 140*time.Millisecond, 1800
			},
		},
		{
			name:  "the cache doubles when it evicts and misses",
			edit:  func(in *Input) { in.Window.CacheEvictionRate = 400 },
			want:  []move{{SettingCache, 8000, 16000}},
			words: []string{"hit ratio 60% with 27% of lookups evicting an entry"},
		},
		{
			name:  "a cache-hostile load does not grow the cache",
			edit:  func(in *Input) { in.Window.CacheEvictionRate, in.Window.CacheHitRatio = 1400, 0.01 },
			words: []string{"keys barely repeat (cache-hostile)"},
		},
		{
			name: "a cache growth that did not help is not repeated",
			edit: func(in *Input) {
				in.History = []pacerv1.Decision{applied(in.Recent[3].End, pacerv1.Change{Setting: SettingCache, From: 4000, To: 8000, Source: pacerv1.ChangeByTuner})}
				latest(in, 45*time.Second, func(w *Window) { w.CacheHitRatio = 0.605 })
				in.Window.CacheEvictionRate = 400
			},
			words: []string{"the last growth 4000 → 8000 moved the hit ratio 60% → 60%"},
		},
		{
			name: "the cache waits while other settings change",
			edit: func(in *Input) {
				latest(in, time.Minute, func(w *Window) { w.RequestRate, w.CacheLookupRate, w.CPUCores = 2250, 2250, 2.0 })
				in.Window.CacheEvictionRate = 400
			},
			want: []move{{SettingReplicas, 4, 6}},
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
			if (got.Limited != "") != tt.limited {
				t.Errorf("Limited = %q, want it set: %v", got.Limited, tt.limited)
			}
			for _, c := range got.Changes {
				if c.Source == "" {
					t.Errorf("change %s has no source", c.Setting)
				}
			}
		})
	}
}
