package metrics

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pacer-dev/pacer/controllers/tuning"
	m "github.com/pacer-dev/pacer/service/metrics"
)

// podSpan is what one pod contributes to a window: its scrapes from the
// window's base to its newest, oldest first (at least two), or the reason
// it contributes nothing.
type podSpan struct {
	Name    string
	Scrapes []sample
	// Problem, when set, is why the pod has no usable span (scrape failed,
	// first scrape, ...); Scrapes may then be empty.
	Problem string
}

// podStatus is what the sufficiency check needs to know about one pod.
type podStatus struct {
	Name string
	// Problem, when set, is why the pod was not observed.
	Problem string
	// First is true when the pod has no earlier scrape to make a window with.
	First bool
	// HasGeneration is false when the pod does not report its generation.
	HasGeneration bool
	// Generation is the generation the pod runs at the end of the window.
	Generation int64
	// Switched is true when the pod ran another generation during the window.
	Switched bool
}

// buildWindow reduces pod spans to a Window. Pure: the same spans give the
// same window. Rates are per pod over its own span, summed over pods;
// latency quantiles come from the bucket deltas of all pods added together
// (as histogram_quantile over sum by (le) (rate(...)) does); gauges are
// means over each pod's scrapes, then over pods.
func buildWindow(spans []podSpan, t Target) tuning.Window {
	var (
		w        tuning.Window
		statuses = make([]podStatus, 0, len(spans))
		latency  []bucket
		requests float64

		poolWait, poolAcquires float64
		cacheHits, cacheMisses float64
		inFlight, queue        float64
		poolAcquired, entries  float64
		workerLimit, poolMax   float64
		cpu                    float64
	)
	for _, s := range spans {
		st := podStatus{Name: s.Name, Problem: s.Problem}
		if s.Problem == problemFirstScrape || (s.Problem == "" && len(s.Scrapes) < 2) {
			st.Problem, st.First = "", true
		}
		if st.Problem != "" || st.First {
			statuses = append(statuses, st)
			continue
		}
		base, cur := s.Scrapes[0], s.Scrapes[len(s.Scrapes)-1]
		dt := cur.At.Sub(base.At).Seconds()
		if dt <= 0 {
			st.Problem = "scrapes out of order"
			statuses = append(statuses, st)
			continue
		}
		st.HasGeneration, st.Generation = cur.HasGeneration, cur.Generation
		st.Switched = slices.ContainsFunc(s.Scrapes, func(x sample) bool {
			return x.HasGeneration != cur.HasGeneration || x.Generation != cur.Generation
		})
		statuses = append(statuses, st)

		w.Pods++
		if w.Start.IsZero() || base.At.Before(w.Start) {
			w.Start = base.At
		}
		if cur.At.After(w.End) {
			w.End = cur.At
		}
		reset := restarted(base, cur)
		d := func(f func(sample) float64) float64 { return counterDelta(f(base), f(cur), reset) }

		n := d(func(x sample) float64 { return x.Requests })
		requests += n
		w.RequestRate += n / dt
		w.ErrorRate += d(func(x sample) float64 { return x.Errors }) / dt
		w.ShedRate += d(func(x sample) float64 { return x.Shed }) / dt
		w.RateLimitedRate += d(func(x sample) float64 { return x.RateLimited }) / dt
		w.PoolEmptyAcquireRate += d(func(x sample) float64 { return x.PoolEmpty }) / dt
		poolWait += d(func(x sample) float64 { return x.PoolWait })
		poolAcquires += d(func(x sample) float64 { return x.PoolAcquires })
		hits, misses := d(func(x sample) float64 { return x.CacheHits }), d(func(x sample) float64 { return x.CacheMisses })
		cacheHits += hits
		cacheMisses += misses
		w.CacheLookupRate += (hits + misses) / dt
		w.CacheEvictionRate += d(func(x sample) float64 { return x.CacheEvictions }) / dt
		cpu += d(func(x sample) float64 { return x.CPUSeconds }) / dt
		latency = addBuckets(latency, histogramDelta(base.Latency, cur.Latency, reset))

		q := meanOf(s.Scrapes, func(x sample) float64 { return x.QueueLength })
		queue += q
		inFlight += meanInFlight(base, cur, reset, dt, q, meanOf(s.Scrapes, func(x sample) float64 { return x.InFlight }))
		poolAcquired += meanOf(s.Scrapes, func(x sample) float64 { return x.PoolAcquired })
		entries += meanOf(s.Scrapes, func(x sample) float64 { return x.CacheEntries })
		workerLimit += cur.WorkerLimit
		poolMax += cur.PoolMax
		if pool := int64(math.Round(cur.PoolMax)); pool > 0 {
			w.Pools = addPool(w.Pools, pool)
		}
	}

	if w.Pods > 0 {
		pods := float64(w.Pods)
		w.InFlight = inFlight / pods
		w.QueueLength = queue / pods
		w.PoolAcquired = poolAcquired / pods
		w.CacheEntries = entries / pods
		w.CPUCores = cpu / pods
		w.WorkerLimit = int(math.Round(workerLimit / pods))
		w.PoolMaxConns = int(math.Round(poolMax / pods))
	}
	if w.WorkerLimit > 0 {
		w.Utilization = clamp01(w.InFlight / float64(w.WorkerLimit))
	}
	if poolAcquires > 0 {
		w.PoolAcquireWait = seconds(poolWait / poolAcquires)
	}
	if cacheHits+cacheMisses > 0 {
		w.CacheHitRatio = clamp01(cacheHits / (cacheHits + cacheMisses))
	}
	w.P50 = seconds(quantile(0.50, latency))
	w.P95 = seconds(quantile(0.95, latency))
	w.P99 = seconds(quantile(0.99, latency))
	judge(&w, statuses, t, requests)
	return w
}

// addPool counts one more pod whose latest scrape reported a request pool
// of pool connections (summed over the pools alive during a swap: what the
// pod may hold). Nonsense sizes are not counted: such a pod stays unseen.
func addPool(pools map[int32]int32, pool int64) map[int32]int32 {
	if pool <= 0 || pool > math.MaxInt32 {
		return pools
	}
	if pools == nil {
		pools = map[int32]int32{}
	}
	pools[int32(pool)]++
	return pools
}

// meanInFlight is a pod's mean number of requests holding a worker slot
// over the span. Two or three gauge readings are a poor mean of a quantity
// that changes every millisecond, so it uses Little's law instead: the
// latency histogram's sum grows by every finished request's time in the
// pod, queue wait included, so its rate is the mean number of requests in
// the pod; less the mean queue length, it is the mean in flight. It falls
// back to the gauge readings when no request finished, and never exceeds
// the worker limit.
func meanInFlight(base, cur sample, reset bool, dt, queue, gaugeMean float64) float64 {
	reset = reset || cur.Latency.Count < base.Latency.Count
	if counterDelta(base.Latency.Count, cur.Latency.Count, reset) == 0 {
		return gaugeMean
	}
	inSystem := counterDelta(base.Latency.Sum, cur.Latency.Sum, reset) / dt
	return limitInFlight(inSystem-queue, cur.WorkerLimit)
}

// limitInFlight clamps an in-flight estimate to [0, worker limit].
func limitInFlight(x, workerLimit float64) float64 {
	x = max(x, 0)
	if workerLimit > 0 {
		x = min(x, workerLimit)
	}
	return x
}

// problemFirstScrape marks a pod with no earlier scrape old enough to make
// a window with.
const problemFirstScrape = "first scrape"

// judge sets the window's Generation, Sufficient and Reason from the pods'
// statuses and the number of requests seen. A window counts only when every
// ready pod was observed over a span, every pod ran t.Generation for the
// whole span, and at least t.MinRequests requests were seen.
func judge(w *tuning.Window, statuses []podStatus, t Target, requests float64) {
	var (
		problems                   []string
		failed, first, noGen, swit []string
		gens                       = map[int64][]string{}
	)
	for _, s := range statuses {
		switch {
		case s.Problem != "":
			failed = append(failed, s.Name+": "+s.Problem)
		case s.First:
			first = append(first, s.Name)
		case !s.HasGeneration:
			noGen = append(noGen, s.Name)
		default:
			gens[s.Generation] = append(gens[s.Generation], s.Name)
			if s.Switched {
				swit = append(swit, s.Name)
			}
		}
	}
	w.Generation = windowGeneration(gens, t.Generation)

	// Why the window does not count, most fundamental first.
	total := len(t.Pods)
	list := func(names []string, sep string) string {
		names = slices.Clone(names)
		slices.Sort(names)
		return strings.Join(names, sep)
	}
	if total == 0 {
		problems = append(problems, "no ready pods")
	}
	if len(failed) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d pods not observed (%s)", len(failed), total, list(failed, "; ")))
	}
	if len(first) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d pods have no earlier sample yet to make a window with (%s)", len(first), total, list(first, ", ")))
	}
	if len(noGen) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d pods do not report %s (%s)", len(noGen), total, m.ConfigGeneration, list(noGen, ", ")))
	}
	if p := generationProblem(gens, t.Generation, total); p != "" {
		problems = append(problems, p)
	} else if len(swit) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d pods changed config generation during the window (%s); the next window counts",
			len(swit), total, list(swit, ", ")))
	}
	if len(problems) == 0 && float64(t.MinRequests) > requests {
		problems = append(problems, fmt.Sprintf("%.0f requests in %s, need at least %d",
			requests, w.End.Sub(w.Start).Round(time.Second), t.MinRequests))
	}
	w.Sufficient = len(problems) == 0
	w.Reason = strings.Join(problems, "; ")
}

// generationProblem says which pods do not run the wanted generation, as
// "2 of 3 pods still run config generation 4, want 5 (a, b)".
func generationProblem(gens map[int64][]string, want int64, total int) string {
	var parts []string
	keys := make([]int64, 0, len(gens))
	for g := range gens {
		if g != want {
			keys = append(keys, g)
		}
	}
	slices.Sort(keys)
	for _, g := range keys {
		pods := slices.Clone(gens[g])
		slices.Sort(pods)
		verb := "still run"
		if g > want {
			verb = "run a newer"
		}
		parts = append(parts, fmt.Sprintf("%d of %d pods %s config generation %d, want %d (%s)",
			len(pods), total, verb, g, want, strings.Join(pods, ", ")))
	}
	return strings.Join(parts, "; ")
}

// windowGeneration is the generation every pod runs, or the lowest one seen
// when they differ (want when none was seen).
func windowGeneration(gens map[int64][]string, want int64) int64 {
	if len(gens) == 0 {
		return want
	}
	lowest := int64(math.MaxInt64)
	for g := range gens {
		lowest = min(lowest, g)
	}
	return lowest
}

// restarted reports a process restart between two scrapes of a pod.
func restarted(base, cur sample) bool {
	return base.StartTime != 0 && cur.StartTime != 0 && base.StartTime != cur.StartTime
}

// counterDelta is the increase of a counter between two scrapes. After a
// reset (a restart, or the counter fell) the counter counted from 0, so the
// increase is its current value, as Prometheus's rate() assumes.
func counterDelta(base, cur float64, reset bool) float64 {
	if reset || cur < base {
		return max(cur, 0)
	}
	return cur - base
}

// histogramDelta is the per-bucket increase of a cumulative histogram; after
// a reset it is the current histogram.
func histogramDelta(base, cur histogram, reset bool) []bucket {
	if reset || cur.Count < base.Count {
		return slices.Clone(cur.Buckets)
	}
	out := make([]bucket, 0, len(cur.Buckets))
	for _, b := range cur.Buckets {
		prev := 0.0
		if i, ok := findBucket(base.Buckets, b.UpperBound); ok {
			prev = base.Buckets[i].Count
		}
		out = append(out, bucket{UpperBound: b.UpperBound, Count: max(b.Count-prev, 0)})
	}
	return out
}

func findBucket(bs []bucket, ub float64) (int, bool) {
	i := sort.Search(len(bs), func(i int) bool { return bs[i].UpperBound >= ub })
	return i, i < len(bs) && bs[i].UpperBound == ub
}

// addBuckets adds cumulative bucket counts by upper bound. A bound that one
// side lacks is filled in from that side's next lower bound, so the sum
// stays cumulative.
func addBuckets(a, b []bucket) []bucket {
	if len(a) == 0 {
		return slices.Clone(b)
	}
	if len(b) == 0 {
		return a
	}
	bounds := make([]float64, 0, len(a)+len(b))
	for _, x := range a {
		bounds = append(bounds, x.UpperBound)
	}
	for _, x := range b {
		bounds = append(bounds, x.UpperBound)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	at := func(bs []bucket, ub float64) float64 {
		i := sort.Search(len(bs), func(i int) bool { return bs[i].UpperBound > ub })
		if i == 0 {
			return 0
		}
		return bs[i-1].Count
	}
	out := make([]bucket, len(bounds))
	for i, ub := range bounds {
		out[i] = bucket{UpperBound: ub, Count: at(a, ub) + at(b, ub)}
	}
	return out
}

// quantile estimates the q-quantile from cumulative buckets sorted by upper
// bound, the way Prometheus's histogram_quantile does: find the bucket the
// rank falls in and interpolate linearly within it; the lowest bucket starts
// at 0 (when its bound is positive); a rank in the +Inf bucket returns the
// highest finite bound. It returns NaN when there were no observations or
// the buckets lack +Inf.
func quantile(q float64, buckets []bucket) float64 {
	switch {
	case math.IsNaN(q):
		return math.NaN()
	case q < 0:
		return math.Inf(-1)
	case q > 1:
		return math.Inf(+1)
	}
	if len(buckets) < 2 || !math.IsInf(buckets[len(buckets)-1].UpperBound, +1) {
		return math.NaN()
	}
	bs := slices.Clone(buckets)
	// Cumulative counts never fall; rounding or a scrape racing an
	// observation can make them, so smooth it as Prometheus does.
	for i := 1; i < len(bs); i++ {
		bs[i].Count = max(bs[i].Count, bs[i-1].Count)
	}
	total := bs[len(bs)-1].Count
	if total == 0 {
		return math.NaN()
	}
	rank := q * total
	b := sort.Search(len(bs)-1, func(i int) bool { return bs[i].Count >= rank })
	switch {
	case b == len(bs)-1:
		return bs[len(bs)-2].UpperBound
	case b == 0 && bs[0].UpperBound <= 0:
		return bs[0].UpperBound
	}
	start, end, count := 0.0, bs[b].UpperBound, bs[b].Count
	if b > 0 {
		start = bs[b-1].UpperBound
		count -= bs[b-1].Count
		rank -= bs[b-1].Count
	}
	if count == 0 {
		return end
	}
	return start + (end-start)*(rank/count)
}

func meanOf(xs []sample, f func(sample) float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	total := 0.0
	for _, x := range xs {
		total += f(x)
	}
	return total / float64(len(xs))
}

func clamp01(x float64) float64 {
	switch {
	case math.IsNaN(x) || x < 0:
		return 0
	case x > 1:
		return 1
	}
	return x
}

// seconds converts to a Duration; NaN, negative and infinite values are 0
// (no estimate) rather than garbage.
func seconds(s float64) time.Duration {
	if math.IsNaN(s) || math.IsInf(s, 0) || s <= 0 {
		return 0
	}
	// Beyond what a Duration holds the conversion is undefined: cap it.
	return time.Duration(min(s, float64(math.MaxInt64/time.Second)) * float64(time.Second))
}
