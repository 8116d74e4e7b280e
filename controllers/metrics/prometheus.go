package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/pacer-dev/pacer/controllers/tuning"
	m "github.com/pacer-dev/pacer/service/metrics"
)

// Labels the Prometheus source selects a TunedService's pods by. Prometheus
// must attach them to every series scraped from a pacer-api pod, as the
// PodMonitor in config/prometheus does (the Prometheus Operator adds
// `namespace` and `pod` to every target). With plain kubernetes_sd_configs
// (role: pod), relabel as follows:
//
//	relabel_configs:
//	  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
//	  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
const (
	LabelNamespace = "namespace"
	LabelPod       = "pod"
)

// PrometheusOptions configure a Prometheus source.
type PrometheusOptions struct {
	// URL is the base URL of the Prometheus HTTP API, such as
	// http://prometheus.monitoring.svc:9090 (spec.tuning.metrics.prometheusURL).
	URL string
	// Client makes the requests; nil means client_golang's default
	// round tripper.
	Client *http.Client
	// ScrapeInterval is how often Prometheus scrapes the pods; the query
	// range is at least four of them, so rate() always has samples.
	// Default 30s (the Prometheus Operator's default).
	ScrapeInterval time.Duration
	// Timeout bounds each query; default 10s.
	Timeout time.Duration
	// Now is the clock the window ends at; default time.Now.
	Now func() time.Time
	// Budget bounds the bytes of answers held at once across every scrape
	// and query; nil means no bound but the answer's own.
	Budget *Budget
}

// Prometheus computes the window with PromQL from a Prometheus server that
// scrapes the pods. It keeps no state: each Observe asks for the last
// max(Interval, 4 × ScrapeInterval), in one query.
type Prometheus struct {
	o   PrometheusOptions
	api promv1.API
}

var _ Source = (*Prometheus)(nil)

// NewPrometheus returns a Prometheus source for the server at o.URL.
func NewPrometheus(o PrometheusOptions) (*Prometheus, error) {
	if o.URL == "" {
		return nil, errors.New("metrics: Prometheus source needs a URL")
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = 30 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// Every answer is read through boundedTransport, whatever the client.
	client := http.Client{}
	if o.Client != nil {
		client = *o.Client
	}
	next := client.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	client.Transport = &boundedTransport{next: next, fallback: answerBaseBytes}
	c, err := api.NewClient(api.Config{Address: o.URL, Client: &client})
	if err != nil {
		return nil, fmt.Errorf("metrics: Prometheus URL %q: %w", o.URL, err)
	}
	return &Prometheus{o: o, api: promv1.NewAPI(c)}, nil
}

// Forget does nothing: the Prometheus source keeps nothing per target.
func (p *Prometheus) Forget(string, string) {}

// Range is the query range Observe uses for a target: max(t.Interval,
// 4 × ScrapeInterval), in whole seconds.
func (p *Prometheus) Range(t Target) time.Duration {
	r := max(t.Interval, 4*p.o.ScrapeInterval)
	return r.Round(time.Second)
}

// Names of the results of the one query Observe makes; see queries.
const (
	qGenSamples = "gen_samples"
	qGenMin     = "gen_min"
	qGenMax     = "gen_max"
	qGenLast    = "gen_last"
	qUp         = "up"
	qPodPool    = "pod_pool_max"

	qRequests     = "requests"
	qRequestRate  = "request_rate"
	qErrorRate    = "error_rate"
	qShedRate     = "shed_rate"
	qLimitedRate  = "ratelimited_rate"
	qP50          = "p50"
	qP95          = "p95"
	qP99          = "p99"
	qInFlight     = "in_flight"
	qInSystem     = "in_system"
	qFinished     = "finished"
	qQueue        = "queue"
	qWorkerLimit  = "worker_limit"
	qPoolMax      = "pool_max"
	qPoolAcquired = "pool_acquired"
	qPoolWait     = "pool_wait"
	qPoolAcquires = "pool_acquires"
	qPoolEmpty    = "pool_empty_rate"
	qCacheHits    = "cache_hits"
	qCacheMisses  = "cache_misses"
	qCacheLookups = "cache_lookup_rate"
	qEvictions    = "cache_eviction_rate"
	qEntries      = "cache_entries"
	qCPU          = "cpu"
)

// resultLabel tags each sub-query's result in the combined query.
const resultLabel = "pacer_result"

type namedQuery struct{ name, expr string }

// queries are the PromQL expressions of a window over range r of the pods
// matched by sel. The first group is per pod (by pod); the rest are single
// values over all pods, the same reductions the Pods source makes.
func queries(sel string, r string) []namedQuery {
	over := func(fn, metric, extra string) string {
		return fmt.Sprintf("%s(%s{%s%s}[%s])", fn, metric, sel, extra, r)
	}
	byPod := func(expr string) string { return "max by (" + LabelPod + ") (" + expr + ")" }
	local := fmt.Sprintf(",%s=%q", m.LabelLayer, m.LayerLocal)
	quantile := func(q string) string {
		return fmt.Sprintf("histogram_quantile(%s, sum by (le) (%s))", q, over("rate", m.RequestDuration+"_bucket", ""))
	}
	return []namedQuery{
		{qGenSamples, byPod(over("count_over_time", m.ConfigGeneration, ""))},
		{qGenMin, byPod(over("min_over_time", m.ConfigGeneration, ""))},
		{qGenMax, byPod(over("max_over_time", m.ConfigGeneration, ""))},
		{qGenLast, byPod(over("last_over_time", m.ConfigGeneration, ""))},
		{qUp, byPod(over("max_over_time", "up", ""))},
		{qPodPool, byPod(over("last_over_time", m.DBPoolMaxConns, ""))},

		{qRequests, "sum(" + over("increase", m.RequestsTotal, "") + ")"},
		{qRequestRate, "sum(" + over("rate", m.RequestsTotal, "") + ")"},
		{qErrorRate, "sum(" + over("rate", m.RequestsTotal, fmt.Sprintf(",%s=%q", m.LabelCode, "5xx")) + ")"},
		{qShedRate, "sum(" + over("rate", m.QueueRejectionsTotal, "") + ")"},
		{qLimitedRate, "sum(" + over("rate", m.RateLimitedTotal, "") + ")"},
		{qP50, quantile("0.5")},
		{qP95, quantile("0.95")},
		{qP99, quantile("0.99")},
		{qInFlight, "avg(" + over("avg_over_time", m.RequestsInFlight, "") + ")"},
		{qInSystem, "avg(sum by (" + LabelPod + ") (" + over("rate", m.RequestDuration+"_sum", "") + "))"},
		{qFinished, "sum(" + over("increase", m.RequestDuration+"_count", "") + ")"},
		{qQueue, "avg(" + over("avg_over_time", m.QueueLength, "") + ")"},
		{qWorkerLimit, "avg(" + over("last_over_time", m.WorkerLimit, "") + ")"},
		{qPoolMax, "avg(" + over("last_over_time", m.DBPoolMaxConns, "") + ")"},
		{qPoolAcquired, "avg(" + over("avg_over_time", m.DBPoolAcquiredConns, "") + ")"},
		{qPoolWait, "sum(" + over("increase", m.DBPoolAcquireWaitSeconds, "") + ")"},
		{qPoolAcquires, "sum(" + over("increase", m.DBPoolAcquiresTotal, "") + ")"},
		{qPoolEmpty, "sum(" + over("rate", m.DBPoolEmptyAcquiresTotal, "") + ")"},
		{qCacheHits, "sum(" + over("increase", m.CacheHitsTotal, local) + ")"},
		{qCacheMisses, "sum(" + over("increase", m.CacheMissesTotal, local) + ")"},
		{qCacheLookups, "sum(" + over("rate", m.CacheHitsTotal, local) + ") + sum(" + over("rate", m.CacheMissesTotal, local) + ")"},
		{qEvictions, "sum(" + over("rate", m.CacheEvictionsTotal, local) + ")"},
		{qEntries, "avg(" + over("avg_over_time", m.CacheEntries, "") + ")"},
		{qCPU, "avg(" + over("rate", processCPUSeconds, "") + ")"},
	}
}

// Bounds on a Prometheus answer: a base for the envelope, warnings and
// infos, and so much per result the query can return (a result is under
// 400 bytes with the longest pod name).
const (
	answerBaseBytes   = 64 << 10
	answerResultBytes = 1 << 10
)

// perPodResults are the results with one series per pod; every other
// result is a single series.
var perPodResults = map[string]bool{qGenSamples: true, qGenMin: true, qGenMax: true, qGenLast: true, qUp: true, qPodPool: true}

// mostResults is how many series the combined query can return for pods
// pods: the per-pod results once per pod, the rest once.
func mostResults(qs []namedQuery, pods int) int {
	n := 0
	for _, q := range qs {
		if perPodResults[q.name] {
			n += pods
		} else {
			n++
		}
	}
	return n
}

// combine joins the queries into one, each result tagged with its name:
// label_replace(q1, "pacer_result", "name1", "", "") or ... The sets never
// overlap, so `or` keeps every result.
func combine(qs []namedQuery) string {
	parts := make([]string, len(qs))
	for i, q := range qs {
		parts[i] = fmt.Sprintf("label_replace(%s, %q, %q, \"\", \"\")", q.expr, resultLabel, q.name)
	}
	return strings.Join(parts, "\nor\n")
}

// selector matches the target's ready pods.
func selector(t Target) string {
	names := make([]string, len(t.Pods))
	for i, p := range t.Pods {
		names[i] = regexp.QuoteMeta(p.Name)
	}
	return fmt.Sprintf("%s=%s,%s=~%s", LabelNamespace, strconv.Quote(t.Namespace), LabelPod, strconv.Quote(strings.Join(names, "|")))
}

// Observe queries the window ending now. A query failure is an error;
// pods missing from Prometheus make the window insufficient.
func (p *Prometheus) Observe(ctx context.Context, t Target) (tuning.Window, error) {
	if err := t.validate(false); err != nil {
		return tuning.Window{}, err
	}
	end := p.o.Now()
	r := p.Range(t)
	w := tuning.Window{Start: end.Add(-r), End: end}
	if len(t.Pods) == 0 {
		judge(&w, nil, t, 0)
		return w, nil
	}
	res, err := p.query(ctx, t, end, model.Duration(r).String())
	if err != nil {
		log.FromContext(ctx).V(1).Info("Prometheus query failed", "target", t.Namespace+"/"+t.Name, "error", err.Error())
		return tuning.Window{}, &queryFailure{cause: err}
	}
	fillWindow(&w, res, t)
	return w, nil
}

// query asks Prometheus for the results of the window ending at end over
// range r, within the answer's bounds.
func (p *Prometheus) query(ctx context.Context, t Target, end time.Time, r string) (results, error) {
	qs := queries(selector(t), r)
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	acct, err := p.o.Budget.open(ctx)
	if err != nil {
		return results{}, err
	}
	defer acct.close() // after the parse: what it made is dropped by then
	most := mostResults(qs, len(t.Pods))
	ctx = withAnswerBounds(ctx, answerBounds{limit: answerBaseBytes + int64(most)*answerResultBytes, acct: acct})
	v, _, _, err := p.api.Query(ctx, combine(qs), end, promv1.WithTimeout(p.o.Timeout))
	if err != nil {
		return results{}, err
	}
	vec, err := asVector(v)
	if err != nil {
		return results{}, err
	}
	if len(vec) > most {
		return results{}, fmt.Errorf("answered %d series, more than the query can return (%d)", len(vec), most)
	}
	return parseResults(vec)
}

// asVector checks the query's answer is an instant vector. Prometheus may
// answer success with no data at all, or with any type.
func asVector(v model.Value) (model.Vector, error) {
	vec, ok := v.(model.Vector)
	switch {
	case ok:
		return vec, nil
	case v == nil:
		return nil, errors.New("answered no data, want a vector")
	default:
		return nil, fmt.Errorf("answered a %s, want a vector", v.Type())
	}
}

// results are the combined query's answers: single values by name, per-pod
// values by name and pod.
type results struct {
	single map[string]float64
	perPod map[string]map[string]float64
}

// parseResults reads the combined query's answer. A null sample, which
// valid JSON may hold, makes the answer bad.
func parseResults(vec model.Vector) (results, error) {
	res := results{single: map[string]float64{}, perPod: map[string]map[string]float64{}}
	for _, s := range vec {
		if s == nil {
			return results{}, errors.New("answered a null sample")
		}
		name := string(s.Metric[resultLabel])
		v := float64(s.Value)
		if pod, ok := s.Metric[LabelPod]; ok {
			if res.perPod[name] == nil {
				res.perPod[name] = map[string]float64{}
			}
			res.perPod[name][string(pod)] = v
			continue
		}
		res.single[name] = v
	}
	return res, nil
}

// get is a single result, 0 when absent, negative or not a number (a
// quantile or a ratio of nothing).
func (r results) get(name string) float64 { return finite(r.single[name]) }

// finite is v, or 0 when v is negative or not a finite number.
func finite(v float64) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return 0
	}
	return v
}

// maxCount bounds a count read from Prometheus (a generation, a limit):
// larger values are nonsense, and converting them to an int is undefined.
const maxCount = 1 << 31

// count is v rounded to a whole number in [0, maxCount].
func count(v float64) int64 { return int64(math.Round(min(finite(v), maxCount))) }

// fillWindow turns query results into the window, with the same
// sufficiency rules as the Pods source.
func fillWindow(w *tuning.Window, r results, t Target) {
	statuses := make([]podStatus, 0, len(t.Pods))
	for _, pod := range t.Pods {
		st := podStatus{Name: pod.Name}
		samples, seen := r.perPod[qGenSamples][pod.Name]
		up, scraped := r.perPod[qUp][pod.Name]
		switch {
		case scraped && up == 0:
			st.Problem = "no successful scrape in Prometheus during the window (up == 0)"
		case !seen && !scraped:
			st.Problem = "no samples in Prometheus (is it scraped, with namespace and pod labels?)"
		case !seen:
			st.Problem = "no " + m.ConfigGeneration + " samples in Prometheus"
		case samples < 2:
			st.First = true
		default:
			last := r.perPod[qGenLast][pod.Name]
			st.HasGeneration = true
			st.Generation = count(last)
			st.Switched = r.perPod[qGenMin][pod.Name] != last || r.perPod[qGenMax][pod.Name] != last
			w.Pods++
			if pool := count(r.perPod[qPodPool][pod.Name]); pool > 0 {
				w.Pools = addPool(w.Pools, pool)
			}
		}
		statuses = append(statuses, st)
	}

	w.RequestRate = r.get(qRequestRate)
	w.ErrorRate = r.get(qErrorRate)
	w.ShedRate = r.get(qShedRate)
	w.RateLimitedRate = r.get(qLimitedRate)
	w.P50 = seconds(r.get(qP50))
	w.P95 = seconds(r.get(qP95))
	w.P99 = seconds(r.get(qP99))
	w.QueueLength = r.get(qQueue)
	w.WorkerLimit = int(count(r.single[qWorkerLimit]))
	// Little's law, as the Pods source (see meanInFlight).
	w.InFlight = r.get(qInFlight)
	if r.get(qFinished) > 0 {
		w.InFlight = limitInFlight(r.get(qInSystem)-w.QueueLength, float64(w.WorkerLimit))
	}
	if w.WorkerLimit > 0 {
		w.Utilization = clamp01(w.InFlight / float64(w.WorkerLimit))
	}
	w.PoolMaxConns = int(count(r.single[qPoolMax]))
	w.PoolAcquired = r.get(qPoolAcquired)
	if n := r.get(qPoolAcquires); n > 0 {
		w.PoolAcquireWait = seconds(r.get(qPoolWait) / n)
	}
	w.PoolEmptyAcquireRate = r.get(qPoolEmpty)
	if hits, misses := r.get(qCacheHits), r.get(qCacheMisses); hits+misses > 0 {
		w.CacheHitRatio = clamp01(hits / (hits + misses))
	}
	w.CacheLookupRate = r.get(qCacheLookups)
	w.CacheEvictionRate = r.get(qEvictions)
	w.CacheEntries = r.get(qEntries)
	w.CPUCores = r.get(qCPU)
	judge(w, statuses, t, r.get(qRequests))
}
