package metrics

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/pacer-dev/pacer/controllers/tuning"
)

var inf = math.Inf(+1)

// hist builds a cumulative histogram from (upper bound, cumulative count)
// pairs; the last pair's count is the total.
func hist(pairs ...float64) histogram {
	var h histogram
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Buckets = append(h.Buckets, bucket{UpperBound: pairs[i], Count: pairs[i+1]})
	}
	if n := len(h.Buckets); n > 0 {
		h.Count = h.Buckets[n-1].Count
	}
	return h
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		q       float64
		buckets []bucket
		want    float64
	}{
		{"no buckets", 0.5, nil, math.NaN()},
		{"only +Inf", 0.5, hist(inf, 10).Buckets, math.NaN()},
		{"no +Inf bucket", 0.5, hist(0.1, 5, 0.2, 10).Buckets, math.NaN()},
		{"no observations", 0.5, hist(0.1, 0, inf, 0).Buckets, math.NaN()},
		{"lowest bucket starts at 0", 0.5, hist(0.1, 10, inf, 10).Buckets, 0.05},
		{"interpolates within a bucket", 0.5, hist(0.1, 0, 0.2, 10, inf, 10).Buckets, 0.15},
		{"p99 of 100 spread over two buckets", 0.99, hist(0.01, 90, 0.1, 100, inf, 100).Buckets, 0.01 + 0.09*0.9},
		{"rank exactly on a bound", 0.9, hist(0.01, 90, 0.1, 100, inf, 100).Buckets, 0.01},
		{"rank in +Inf returns the highest finite bound", 0.99, hist(0.1, 5, 0.5, 9, inf, 10).Buckets, 0.5},
		{"q=0 is the lowest bucket's start", 0, hist(0.1, 10, inf, 10).Buckets, 0},
		{"q=1 is the top of the last populated bucket", 1, hist(0.1, 4, 0.2, 10, inf, 10).Buckets, 0.2},
		{"q below 0", -0.1, hist(0.1, 10, inf, 10).Buckets, math.Inf(-1)},
		{"q above 1", 1.1, hist(0.1, 10, inf, 10).Buckets, math.Inf(+1)},
		{"non-positive lowest bound", 0.1, hist(-1, 5, 1, 10, inf, 10).Buckets, -1},
		{"non-monotonic counts are smoothed", 0.5, hist(0.1, 10, 0.2, 9, inf, 10).Buckets, 0.05},
		{"empty buckets in between", 0.75, hist(0.1, 5, 0.2, 5, 0.4, 10, inf, 10).Buckets, 0.3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := quantile(tt.q, tt.buckets)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateNaNs(), cmpopts.EquateApprox(0, 1e-12)); diff != "" {
				t.Errorf("quantile(%v) (-want +got):\n%s", tt.q, diff)
			}
		})
	}
}

func TestCounterDelta(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		base, cur float64
		reset     bool
		want      float64
	}{
		{name: "increase", base: 100, cur: 150, want: 50},
		{name: "no change", base: 100, cur: 100, want: 0},
		{name: "counter fell: reset, counts from zero", base: 100, cur: 30, want: 30},
		{name: "restart although the counter grew past the old value", base: 100, cur: 130, reset: true, want: 130},
		{name: "negative garbage after a reset", base: 5, cur: -1, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := counterDelta(tt.base, tt.cur, tt.reset); got != tt.want {
				t.Errorf("counterDelta(%v, %v, %v) = %v, want %v", tt.base, tt.cur, tt.reset, got, tt.want)
			}
		})
	}
}

func TestHistogramDeltaAndAdd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		base, cur histogram
		reset     bool
		want      []bucket
	}{
		{"per-bucket increase", hist(0.1, 5, 1, 8, inf, 10), hist(0.1, 15, 1, 28, inf, 40), false, hist(0.1, 10, 1, 20, inf, 30).Buckets},
		{"new series: missing base buckets count as 0", histogram{}, hist(0.1, 1, inf, 2), false, hist(0.1, 1, inf, 2).Buckets},
		{"count fell: reset", hist(0.1, 50, inf, 60), hist(0.1, 3, inf, 4), false, hist(0.1, 3, inf, 4).Buckets},
		{"restart", hist(0.1, 1, inf, 1), hist(0.1, 3, inf, 4), true, hist(0.1, 3, inf, 4).Buckets},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, histogramDelta(tt.base, tt.cur, tt.reset)); diff != "" {
				t.Errorf("histogramDelta (-want +got):\n%s", diff)
			}
		})
	}

	// Adding histograms with different bounds keeps the sum cumulative: a
	// bound one side lacks takes that side's next lower bound.
	got := addBuckets(hist(0.1, 1, 1, 2, inf, 3).Buckets, hist(0.5, 10, inf, 20).Buckets)
	want := hist(0.1, 1, 0.5, 11, 1, 12, inf, 23).Buckets
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("addBuckets (-want +got):\n%s", diff)
	}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// scrapeAt is a healthy pod's sample at t0+sec with counters scaled by n:
// n requests (n/10 of them 5xx), n/20 shed, n/50 rate limited, latency of
// 0.9n requests under 10ms and the rest under 100ms, 50ms on average (at
// 100 requests a second, 5 in the pod: 4 in flight and 1 queued).
func scrapeAt(sec, n float64, gen int64) sample {
	return sample{
		At: t0.Add(time.Duration(sec * float64(time.Second))), HasGeneration: true, Generation: gen, StartTime: 1000,
		Requests: n, Errors: n / 10, Shed: n / 20, RateLimited: n / 50,
		PoolAcquires: n / 2, PoolWait: n / 2 * 0.002, PoolEmpty: n / 10,
		CacheHits: n * 0.8, CacheMisses: n * 0.2, CacheEvictions: n / 100,
		CPUSeconds: sec * 0.25,
		Latency:    func() histogram { h := hist(0.01, 0.9*n, 0.1, n, inf, n); h.Sum = n * 0.05; return h }(),
		InFlight:   4, QueueLength: 1, WorkerLimit: 16, PoolAcquired: 3, PoolMax: 8, CacheEntries: 500,
	}
}

func TestBuildWindow(t *testing.T) {
	t.Parallel()
	target := func(gen, minRequests int64, pods ...string) Target {
		t := Target{Namespace: "ns", Name: "svc", Generation: gen, MinRequests: minRequests}
		for _, p := range pods {
			t.Pods = append(t.Pods, Pod{Name: p, Host: "127.0.0.1"})
		}
		return t
	}
	// One healthy pod over 10s: 1000 requests.
	onePod := tuning.Window{
		Start: t0, End: t0.Add(10 * time.Second), Pods: 1, Generation: 5,
		RequestRate: 100, ErrorRate: 10, ShedRate: 5, RateLimitedRate: 2,
		// 900 of 1000 under 10ms: p50 at rank 500 in [0, 10ms]; p95 at rank 950
		// is 50/100 into (10ms, 100ms]; p99 is 90/100 into it.
		P50: 5555555 * time.Nanosecond, P95: 55 * time.Millisecond, P99: 91 * time.Millisecond,
		InFlight: 4, QueueLength: 1, WorkerLimit: 16, Utilization: 0.25,
		PoolMaxConns: 8, PoolAcquired: 3, PoolAcquireWait: 2 * time.Millisecond, PoolEmptyAcquireRate: 10,
		Pools:         map[int32]int32{8: 1},
		CacheHitRatio: 0.8, CacheLookupRate: 100, CacheEvictionRate: 1, CacheEntries: 500,
		CPUCores: 0.25, Sufficient: true,
	}
	with := func(w tuning.Window, f func(*tuning.Window)) tuning.Window { f(&w); return w }

	tests := []struct {
		name   string
		spans  []podSpan
		target Target
		want   tuning.Window
	}{
		{
			name:   "one pod, two scrapes",
			spans:  []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), scrapeAt(10, 2000, 5)}}},
			target: target(5, 100, "a"),
			want:   onePod,
		},
		{
			name: "two pods: rates add up, per-pod figures are means",
			spans: []podSpan{
				{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), scrapeAt(10, 2000, 5)}},
				{Name: "b", Scrapes: []sample{scrapeAt(1, 0, 5), func() sample {
					s := scrapeAt(11, 1000, 5)
					s.QueueLength, s.CacheEntries = 3, 700
					return s
				}()}},
			},
			target: target(5, 100, "a", "b"),
			want: with(onePod, func(w *tuning.Window) {
				w.End = t0.Add(11 * time.Second)
				w.Pods, w.Pools = 2, map[int32]int32{8: 2}
				w.RequestRate, w.ErrorRate, w.ShedRate, w.RateLimitedRate = 200, 20, 10, 4
				w.PoolEmptyAcquireRate, w.CacheLookupRate, w.CacheEvictionRate = 20, 200, 2
				// b's scrapes average 2 queued (so 3 of its 5 in the pod are in
				// flight) and 600 entries.
				w.InFlight, w.QueueLength, w.CacheEntries = 3.5, 1.5, 550
				w.Utilization = 3.5 / 16
			}),
		},
		{
			name: "a mean over every scrape in the span",
			spans: []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), func() sample {
				s := scrapeAt(5, 1500, 5)
				s.CacheEntries, s.PoolAcquired = 800, 6
				return s
			}(), scrapeAt(10, 2000, 5)}}},
			target: target(5, 100, "a"),
			want:   with(onePod, func(w *tuning.Window) { w.CacheEntries, w.PoolAcquired = 600, 4 }),
		},
		{
			name: "in flight by Little's law: time in the pod per second, less the queue",
			spans: []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), func() sample {
				s := scrapeAt(10, 2000, 5)
				s.Latency.Sum += 70 // 7 more requests in the pod on average: 11 in flight
				s.InFlight = 0      // whatever the gauge read at the scrape
				return s
			}()}}},
			target: target(5, 100, "a"),
			want:   with(onePod, func(w *tuning.Window) { w.InFlight, w.Utilization = 11, 11.0/16 }),
		},
		{
			name: "in flight never exceeds the worker limit",
			spans: []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), func() sample {
				s := scrapeAt(10, 2000, 5)
				s.Latency.Sum += 1000
				return s
			}()}}},
			target: target(5, 100, "a"),
			want:   with(onePod, func(w *tuning.Window) { w.InFlight, w.Utilization = 16, 1 }),
		},
		{
			name: "restart: counters count from zero, as rate() assumes",
			spans: []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 5000, 5), func() sample {
				s := scrapeAt(10, 1000, 5) // 1000 requests since the restart
				s.StartTime = 1005
				s.CPUSeconds = 2.5
				return s
			}()}}},
			target: target(5, 100, "a"),
			want:   onePod,
		},
		{
			name: "counters that fell without a restart are reset alone",
			spans: []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), func() sample {
				s := scrapeAt(10, 2000, 5)
				s.PoolAcquires, s.PoolWait = 250, 250*0.003 // a swapped-out pool's counts left the sum
				return s
			}()}}},
			target: target(5, 100, "a"),
			want:   with(onePod, func(w *tuning.Window) { w.PoolAcquireWait = 3 * time.Millisecond }),
		},
		{
			name: "a pod still on the old generation",
			spans: []podSpan{
				{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), scrapeAt(10, 2000, 5)}},
				{Name: "b", Scrapes: []sample{scrapeAt(0, 1000, 4), scrapeAt(10, 2000, 4)}},
				{Name: "c", Scrapes: []sample{scrapeAt(0, 1000, 4), scrapeAt(10, 2000, 4)}},
			},
			target: target(5, 100, "a", "b", "c"),
			want: with(onePod, func(w *tuning.Window) {
				w.Pods, w.Generation, w.Pools = 3, 4, map[int32]int32{8: 3}
				w.RequestRate, w.ErrorRate, w.ShedRate, w.RateLimitedRate = 300, 30, 15, 6
				w.PoolEmptyAcquireRate, w.CacheLookupRate, w.CacheEvictionRate = 30, 300, 3
				w.Sufficient, w.Reason = false, "2 of 3 pods still run config generation 4, want 5 (b, c)"
			}),
		},
		{
			name: "pods by the pool each reports last; a pod mid-swap reports both pools",
			spans: []podSpan{
				{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), scrapeAt(10, 2000, 5)}},
				{Name: "b", Scrapes: []sample{scrapeAt(0, 1000, 5), func() sample { s := scrapeAt(10, 2000, 5); s.PoolMax = 4; return s }()}},
				{Name: "c", Scrapes: []sample{scrapeAt(0, 1000, 5), func() sample { s := scrapeAt(10, 2000, 5); s.PoolMax = 4 + 8; return s }()}},
			},
			target: target(5, 100, "a", "b", "c"),
			want: with(onePod, func(w *tuning.Window) {
				w.Pods, w.Pools, w.PoolMaxConns = 3, map[int32]int32{8: 1, 4: 1, 12: 1}, 8
				w.RequestRate, w.ErrorRate, w.ShedRate, w.RateLimitedRate = 300, 30, 15, 6
				w.PoolEmptyAcquireRate, w.CacheLookupRate, w.CacheEvictionRate = 30, 300, 3
			}),
		},
		{
			name:   "a pod that switched generation during the window",
			spans:  []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 4), scrapeAt(10, 2000, 5)}}},
			target: target(5, 100, "a"),
			want: with(onePod, func(w *tuning.Window) {
				w.Sufficient, w.Reason = false, "1 of 1 pods changed config generation during the window (a); the next window counts"
			}),
		},
		{
			name:   "too few requests",
			spans:  []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), scrapeAt(10, 2000, 5)}}},
			target: target(5, 1001, "a"),
			want: with(onePod, func(w *tuning.Window) {
				w.Sufficient, w.Reason = false, "1000 requests in 10s, need at least 1001"
			}),
		},
		{
			name: "a failed scrape, a first scrape and a pod without a generation",
			spans: []podSpan{
				{Name: "a", Scrapes: []sample{scrapeAt(0, 1000, 5), scrapeAt(10, 2000, 5)}},
				{Name: "b", Problem: "scrape 10.0.0.2:9090: connection refused"},
				{Name: "c", Problem: problemFirstScrape},
				{Name: "d", Scrapes: []sample{{At: t0}, {At: t0.Add(10 * time.Second)}}},
			},
			target: target(5, 100, "a", "b", "c", "d"),
			want: with(onePod, func(w *tuning.Window) {
				w.Pods = 2
				w.RequestRate, w.ErrorRate, w.ShedRate, w.RateLimitedRate = 100, 10, 5, 2
				w.InFlight, w.QueueLength, w.PoolAcquired, w.CacheEntries, w.CPUCores = 2, 0.5, 1.5, 250, 0.125
				w.PoolEmptyAcquireRate, w.CacheLookupRate, w.CacheEvictionRate = 10, 100, 1
				w.WorkerLimit, w.PoolMaxConns, w.Utilization = 8, 4, 0.25
				w.Sufficient = false
				w.Reason = "1 of 4 pods not observed (b: scrape 10.0.0.2:9090: connection refused); " +
					"1 of 4 pods have no earlier sample yet to make a window with (c); " +
					"1 of 4 pods do not report pacer_config_generation (d)"
			}),
		},
		{
			name:   "no pods",
			target: target(5, 0),
			want:   tuning.Window{Generation: 5, Reason: "no ready pods"},
		},
		{
			name:   "no traffic: nothing is NaN",
			spans:  []podSpan{{Name: "a", Scrapes: []sample{scrapeAt(0, 0, 5), scrapeAt(10, 0, 5)}}},
			target: target(5, 0, "a"),
			want: tuning.Window{
				Start: t0, End: t0.Add(10 * time.Second), Pods: 1, Generation: 5,
				InFlight: 4, QueueLength: 1, WorkerLimit: 16, Utilization: 0.25,
				PoolMaxConns: 8, PoolAcquired: 3, Pools: map[int32]int32{8: 1}, CacheEntries: 500, CPUCores: 0.25, Sufficient: true,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := buildWindow(tt.spans, tt.target)
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(1e-9, 1e-9), durationApprox); diff != "" {
				t.Errorf("buildWindow (-want +got):\n%s", diff)
			}
		})
	}
}

// durationApprox equates durations within 1µs (float rounding).
var durationApprox = cmp.Comparer(func(a, b time.Duration) bool {
	d := a - b
	return d < time.Microsecond && d > -time.Microsecond
})

func TestPodHistory(t *testing.T) {
	t.Parallel()
	at := func(sec int) sample {
		return sample{At: t0.Add(time.Duration(sec) * time.Second), Requests: float64(sec)}
	}
	secs := func(xs []sample) []float64 {
		out := []float64{}
		for _, x := range xs {
			out = append(out, x.Requests)
		}
		return out
	}
	const minSpan, maxAge = 10 * time.Second, time.Minute
	steps := []struct {
		at       int
		wantKept []float64
		wantSpan []float64 // nil: no window yet
	}{
		{0, []float64{0}, nil},
		{30, []float64{0, 30}, []float64{0, 30}},
		// Called again 3s later: the window reaches back to the scrape at
		// least 10s old, through the one in between.
		{33, []float64{0, 30, 33}, []float64{0, 30, 33}},
		// Once a newer scrape is old enough to be the base, older ones go.
		{40, []float64{30, 33, 40}, []float64{30, 33, 40}},
		// Called every 3s: at most 4 kept, the newest before the latest go
		// first, so the base stays and windows stay 10s to 15s long.
		{43, []float64{33, 40, 43}, []float64{33, 40, 43}},
		{46, []float64{33, 40, 43, 46}, []float64{33, 40, 43, 46}},
		{49, []float64{33, 40, 43, 49}, []float64{33, 40, 43, 49}},
		{52, []float64{40, 43, 49, 52}, []float64{40, 43, 49, 52}},
		{55, []float64{43, 49, 52, 55}, []float64{43, 49, 52, 55}},
		// After a pause only the new scrape is left.
		{500, []float64{500}, nil},
	}
	var ph podHistory
	for _, s := range steps {
		ph.add(at(s.at), 4, minSpan, maxAge)
		if diff := cmp.Diff(s.wantKept, secs(ph.scrapes)); diff != "" {
			t.Errorf("after the scrape at %ds, kept (-want +got):\n%s", s.at, diff)
		}
		span, problem := ph.span(minSpan)
		switch {
		case s.wantSpan == nil && (span != nil || problem != problemFirstScrape):
			t.Errorf("at %ds: span %v, %q; want none yet", s.at, secs(span), problem)
		case s.wantSpan != nil && !cmp.Equal(s.wantSpan, secs(span)):
			t.Errorf("at %ds: span %v, want %v", s.at, secs(span), s.wantSpan)
		}
	}
}
