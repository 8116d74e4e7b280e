// Package telemetry creates pacer-api's Prometheus metrics (names from
// service/metrics, Contract 2) on a registry of its own.
package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pacer-dev/pacer/service/cache"
	"github.com/pacer-dev/pacer/service/jobs"
	m "github.com/pacer-dev/pacer/service/metrics"
)

// Metrics are the instruments the service updates directly. Gauges that
// mirror state (queue length, pool stats...) are read at scrape time from
// Sources instead.
type Metrics struct {
	Registry *prometheus.Registry

	Requests        *prometheus.CounterVec
	RequestDuration *prometheus.HistogramVec
	QueueRejections *prometheus.CounterVec
	RateLimited     prometheus.Counter
	Jobs            jobs.Metrics
	WriteStalls     prometheus.Counter
	UnheldResponses *prometheus.CounterVec
	RefusedConns    *prometheus.CounterVec
	Panics          prometheus.Counter
	ConfigReloads   *prometheus.CounterVec
	ConfigGen       prometheus.Gauge
	ConfigLastOK    prometheus.Gauge
	Cache           cache.Metrics
}

// New registers every instrument, the Go and process collectors, on a new
// registry.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.CacheHitsTotal, Help: "Cache hits by layer."}, []string{m.LabelLayer})
	misses := prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.CacheMissesTotal, Help: "Cache misses by layer."}, []string{m.LabelLayer})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.CacheErrorsTotal, Help: "Failed calls to the shared cache layer; requests were still served."}, []string{m.LabelLayer})
	evictions := prometheus.NewCounterVec(prometheus.CounterOpts{Name: m.CacheEvictionsTotal, Help: "Entries evicted from the in-process cache to respect its bound."}, []string{m.LabelLayer})
	fillRejections := prometheus.NewCounter(prometheus.CounterOpts{Name: m.CacheFillRejectionsTotal, Help: "Cache misses answered 503 because no fill slot freed within the queue timeout."})

	x := &Metrics{
		Registry: reg,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: m.RequestsTotal, Help: "Finished HTTP requests by route, method and status class.",
		}, []string{m.LabelRoute, m.LabelMethod, m.LabelCode}),
		RequestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: m.RequestDuration, Help: "HTTP request latency in seconds, queue wait included.",
			Buckets: m.RequestDurationBuckets,
		}, []string{m.LabelRoute, m.LabelMethod, m.LabelCode}),
		QueueRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: m.QueueRejectionsTotal, Help: "Requests shed with 503 by reason.",
		}, []string{m.LabelReason}),
		RateLimited: prometheus.NewCounter(prometheus.CounterOpts{
			Name: m.RateLimitedTotal, Help: "Requests refused with 429.",
		}),
		Jobs: jobs.Metrics{
			Enqueued: prometheus.NewCounter(prometheus.CounterOpts{Name: m.JobsEnqueuedTotal, Help: "Background jobs stored by this pod."}),
			Done:     prometheus.NewCounter(prometheus.CounterOpts{Name: m.JobsDoneTotal, Help: "Background jobs applied by this pod."}),
			Retried:  prometheus.NewCounter(prometheus.CounterOpts{Name: m.JobsRetriedTotal, Help: "Failed background job attempts that will be retried."}),
			Failed:   prometheus.NewCounter(prometheus.CounterOpts{Name: m.JobsFailedTotal, Help: "Background jobs that failed their last attempt."}),
		},
		WriteStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: m.WriteStallsTotal, Help: "Responses cut off because the client did not read them within the write deadline.",
		}),
		UnheldResponses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: m.UnheldResponsesTotal, Help: "Answers written while holding their worker slot (too large to hold, or over the held-bytes budget).",
		}, []string{m.LabelReason}),
		RefusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: m.RefusedConnectionsTotal, Help: "API connections closed at accept by the total or per-client connection cap.",
		}, []string{m.LabelReason}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: m.PanicsTotal, Help: "Panics recovered while serving a request; the request was answered 500.",
		}),
		ConfigReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: m.ConfigReloadsTotal, Help: "Config reload attempts by result.",
		}, []string{m.LabelResult}),
		ConfigGen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: m.ConfigGeneration, Help: "Generation of the configuration in effect.",
		}),
		ConfigLastOK: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: m.ConfigLastReloadSuccess, Help: "Unix time of the last successful config load.",
		}),
		Cache: cache.Metrics{
			LocalHits:      hits.WithLabelValues(m.LayerLocal),
			LocalMisses:    misses.WithLabelValues(m.LayerLocal),
			RemoteHits:     hits.WithLabelValues(m.LayerRedis),
			RemoteMisses:   misses.WithLabelValues(m.LayerRedis),
			RemoteErrors:   errs.WithLabelValues(m.LayerRedis),
			Evictions:      evictions.WithLabelValues(m.LayerLocal),
			FillRejections: fillRejections,
		},
	}
	// Zero-valued series exist from the start, so rates work from the first scrape.
	for _, r := range []string{m.ReasonQueueFull, m.ReasonQueueTimeout} {
		x.QueueRejections.WithLabelValues(r)
	}
	for _, r := range []string{m.ReasonTooLarge, m.ReasonBudget} {
		x.UnheldResponses.WithLabelValues(r)
	}
	for _, r := range []string{m.ReasonTotal, m.ReasonPerClient} {
		x.RefusedConns.WithLabelValues(r)
	}
	for _, r := range []string{ResultSuccess, ResultFailure} {
		x.ConfigReloads.WithLabelValues(r)
	}
	reg.MustRegister(x.Requests, x.RequestDuration, x.QueueRejections, x.RateLimited, x.WriteStalls, x.UnheldResponses, x.RefusedConns, x.Panics,
		x.Jobs.Enqueued, x.Jobs.Done, x.Jobs.Retried, x.Jobs.Failed, x.ConfigReloads, x.ConfigGen, x.ConfigLastOK, hits, misses, errs, evictions, fillRejections)
	return x
}

// Values of LabelResult.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
)
