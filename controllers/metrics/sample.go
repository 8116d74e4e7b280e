package metrics

import (
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	m "github.com/pacer-dev/pacer/service/metrics"
)

// Standard process collector metrics (client_golang's ProcessCollector),
// which pacer-api registers beside its own.
const (
	processCPUSeconds = "process_cpu_seconds_total"
	processStartTime  = "process_start_time_seconds"
)

// sample is one scrape of one pod, reduced to the sums the window needs, so
// the history kept per pod is a few hundred bytes, not a parsed exposition.
// Counters are sums over their series; a counter only falls when the
// process restarted (or, for pool counters, when a swapped-out pool closed),
// which the window treats as a reset, as Prometheus's rate() does.
type sample struct {
	At time.Time

	// HasGeneration is false when the pod does not export the generation.
	HasGeneration bool
	Generation    int64
	// StartTime is the process start (Unix seconds); a change means a restart.
	StartTime float64

	// Counters.
	Requests       float64 // all requests
	Errors         float64 // code="5xx"
	Shed           float64 // queue rejections, every reason
	RateLimited    float64
	PoolAcquires   float64
	PoolWait       float64 // seconds
	PoolEmpty      float64
	CacheHits      float64 // local layer
	CacheMisses    float64 // local layer
	CacheEvictions float64
	CPUSeconds     float64
	Latency        histogram

	// Gauges.
	InFlight     float64
	QueueLength  float64
	WorkerLimit  float64
	PoolAcquired float64
	PoolMax      float64
	CacheEntries float64
}

// histogram is a cumulative histogram: Buckets sorted by upper bound, the
// last one +Inf (its count equals Count).
type histogram struct {
	Buckets []bucket
	Count   float64
	Sum     float64
}

type bucket struct {
	UpperBound float64
	Count      float64 // cumulative
}

// readFamilies are the metric families reduce reads, and readHistograms
// those of them that are histograms; no other family's lines are parsed.
var (
	readFamilies = []string{
		processStartTime, processCPUSeconds, m.ConfigGeneration,
		m.RequestsTotal, m.QueueRejectionsTotal, m.RateLimitedTotal,
		m.DBPoolAcquiresTotal, m.DBPoolAcquireWaitSeconds, m.DBPoolEmptyAcquiresTotal,
		m.CacheHitsTotal, m.CacheMissesTotal, m.CacheEvictionsTotal,
		m.RequestsInFlight, m.QueueLength, m.WorkerLimit,
		m.DBPoolAcquiredConns, m.DBPoolMaxConns, m.CacheEntries,
	}
	readHistograms = []string{m.RequestDuration}
)

// wantLines are the names on the lines of readFamilies and readHistograms.
var wantLines = func() map[string]bool {
	want := map[string]bool{}
	for _, name := range readFamilies {
		want[name] = true
	}
	for _, name := range readHistograms {
		for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
			want[name+suffix] = true
		}
	}
	return want
}()

// parseSample reads a text-format exposition (Prometheus text 0.0.4): only
// the lines of the families it needs, at most maxSeriesLines of them.
func parseSample(r io.Reader, at time.Time) (sample, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(newExpositionFilter(r, wantLines, maxSeriesLines))
	if err != nil {
		return sample{}, fmt.Errorf("parse metrics: %w", err)
	}
	return reduce(families, at)
}

// reduce sums the families the window needs. Missing families read as 0
// (and a missing generation as HasGeneration false): nothing here fails on
// an exposition that lacks a metric. A histogram with more than maxBuckets
// bounds is an error.
func reduce(families map[string]*dto.MetricFamily, at time.Time) (sample, error) {
	sum := func(name string, keep func(*dto.Metric) bool) float64 {
		total := 0.0
		for _, x := range families[name].GetMetric() {
			if keep == nil || keep(x) {
				total += value(x)
			}
		}
		return total
	}
	local := func(x *dto.Metric) bool {
		l, ok := label(x, m.LabelLayer)
		return !ok || l == m.LayerLocal
	}
	s := sample{
		At:             at,
		StartTime:      sum(processStartTime, nil),
		Requests:       sum(m.RequestsTotal, nil),
		Errors:         sum(m.RequestsTotal, func(x *dto.Metric) bool { l, _ := label(x, m.LabelCode); return l == "5xx" }),
		Shed:           sum(m.QueueRejectionsTotal, nil),
		RateLimited:    sum(m.RateLimitedTotal, nil),
		PoolAcquires:   sum(m.DBPoolAcquiresTotal, nil),
		PoolWait:       sum(m.DBPoolAcquireWaitSeconds, nil),
		PoolEmpty:      sum(m.DBPoolEmptyAcquiresTotal, nil),
		CacheHits:      sum(m.CacheHitsTotal, local),
		CacheMisses:    sum(m.CacheMissesTotal, local),
		CacheEvictions: sum(m.CacheEvictionsTotal, local),
		CPUSeconds:     sum(processCPUSeconds, nil),
		InFlight:       sum(m.RequestsInFlight, nil),
		QueueLength:    sum(m.QueueLength, nil),
		WorkerLimit:    sum(m.WorkerLimit, nil),
		PoolAcquired:   sum(m.DBPoolAcquiredConns, nil),
		PoolMax:        sum(m.DBPoolMaxConns, nil),
		CacheEntries:   sum(m.CacheEntries, local),
	}
	if g := families[m.ConfigGeneration].GetMetric(); len(g) > 0 {
		s.HasGeneration = true
		s.Generation = int64(math.Round(value(g[0])))
	}
	latency, err := mergeHistograms(families[m.RequestDuration].GetMetric())
	if err != nil {
		return sample{}, fmt.Errorf("%s: %w", m.RequestDuration, err)
	}
	s.Latency = latency
	return s, nil
}

// value is the sample value of a counter, gauge or untyped metric. Every
// metric read here is a count, a size or a time: NaN, infinite and negative
// values read as 0.
func value(x *dto.Metric) float64 {
	var v float64
	switch {
	case x.Counter != nil:
		v = x.Counter.GetValue()
	case x.Gauge != nil:
		v = x.Gauge.GetValue()
	case x.Untyped != nil:
		v = x.Untyped.GetValue()
	}
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

func label(x *dto.Metric, name string) (string, bool) {
	for _, l := range x.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

// mergeHistograms adds the series of a histogram family (every route,
// method and status class) into one, as sum by (le) does; at most
// maxBuckets distinct bounds, since each is kept in every pod's history.
func mergeHistograms(series []*dto.Metric) (histogram, error) {
	counts := map[float64]float64{}
	var h histogram
	for _, x := range series {
		hx := x.GetHistogram()
		if hx == nil {
			continue
		}
		count := hx.GetSampleCountFloat()
		if count == 0 {
			count = float64(hx.GetSampleCount())
		}
		h.Count += count
		h.Sum += hx.GetSampleSum()
		hasInf := false
		for _, b := range hx.GetBucket() {
			c := b.GetCumulativeCountFloat()
			if c == 0 {
				c = float64(b.GetCumulativeCount())
			}
			counts[b.GetUpperBound()] += c
			hasInf = hasInf || math.IsInf(b.GetUpperBound(), +1)
		}
		if len(counts) > maxBuckets {
			return histogram{}, fmt.Errorf("more than %d histogram buckets", maxBuckets)
		}
		if !hasInf {
			counts[math.Inf(+1)] += count
		}
	}
	if len(counts) == 0 {
		return h, nil
	}
	h.Buckets = make([]bucket, 0, len(counts))
	for ub, c := range counts {
		h.Buckets = append(h.Buckets, bucket{UpperBound: ub, Count: c})
	}
	sort.Slice(h.Buckets, func(i, j int) bool { return h.Buckets[i].UpperBound < h.Buckets[j].UpperBound })
	return h, nil
}
