package telemetry

import (
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pacer-dev/pacer/service/limiter"
	m "github.com/pacer-dev/pacer/service/metrics"
	"github.com/pacer-dev/pacer/service/store"
)

// Sources are the components whose state is read at scrape time.
type Sources struct {
	Limiter        func() limiter.Stats
	CacheEntries   func() int
	CacheFills     func() limiter.Stats
	RateLimitUsers func() int
	JobsPending    func() int64
	JobsOldestAge  func() time.Duration
	Pool           func() store.Stats
	PoolSwaps      func() int64
}

// RegisterSources registers gauges and the pool collector reading from s.
// Every func must be set: a nil one is an error here, not a panic at
// every scrape.
func (x *Metrics) RegisterSources(s Sources) error {
	if err := s.check(); err != nil {
		return err
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	x.Registry.MustRegister(
		gauge(m.RequestsInFlight, "Requests holding a worker slot.", func() float64 { return float64(s.Limiter().InFlight) }),
		gauge(m.QueueLength, "Requests waiting for a worker slot.", func() float64 { return float64(s.Limiter().Queued) }),
		gauge(m.WorkerLimit, "Current maximum of requests in flight.", func() float64 { return float64(s.Limiter().Limits.MaxInFlight) }),
		gauge(m.QueueDepthLimit, "Current maximum queue length.", func() float64 { return float64(s.Limiter().Limits.QueueDepth) }),
		gauge(m.CacheEntries, "Entries in the in-process cache.", func() float64 { return float64(s.CacheEntries()) }),
		gauge(m.CacheFillsInFlight, "Cache fills reading the database.", func() float64 { return float64(s.CacheFills().InFlight) }),
		gauge(m.CacheFillsWaiting, "Cache fills waiting for a fill slot.", func() float64 { return float64(s.CacheFills().Queued) }),
		gauge(m.CacheFillLimit, "Current bound on concurrent cache fills.", func() float64 { return float64(s.CacheFills().Limits.MaxInFlight) }),
		gauge(m.RateLimitClients, "Client buckets held by the rate limiter.", func() float64 { return float64(s.RateLimitUsers()) }),
		gauge(m.JobsQueued, "Background jobs pending in the outbox, every pod's.", func() float64 { return float64(s.JobsPending()) }),
		gauge(m.JobsOldestPendingAge, "Age of the oldest pending background job in seconds.", func() float64 { return s.JobsOldestAge().Seconds() }),
		&poolCollector{stats: s.Pool, swaps: s.PoolSwaps},
	)
	return nil
}

// check names the first func of s that is nil.
func (s Sources) check() error {
	for _, f := range []struct {
		name string
		nil  bool
	}{
		{"Limiter", s.Limiter == nil}, {"CacheEntries", s.CacheEntries == nil}, {"CacheFills", s.CacheFills == nil},
		{"RateLimitUsers", s.RateLimitUsers == nil}, {"JobsPending", s.JobsPending == nil},
		{"JobsOldestAge", s.JobsOldestAge == nil}, {"Pool", s.Pool == nil}, {"PoolSwaps", s.PoolSwaps == nil},
	} {
		if f.nil {
			return fmt.Errorf("telemetry: Sources.%s is nil", f.name)
		}
	}
	return nil
}

// poolCollector exports pgxpool statistics, summed over the pools alive
// during a swap (store.Pools does the summing).
type poolCollector struct {
	stats func() store.Stats
	swaps func() int64
}

var (
	descAcquired = prometheus.NewDesc(m.DBPoolAcquiredConns, "Connections currently acquired.", nil, nil)
	descIdle     = prometheus.NewDesc(m.DBPoolIdleConns, "Idle connections.", nil, nil)
	descTotal    = prometheus.NewDesc(m.DBPoolTotalConns, "Open connections.", nil, nil)
	descMax      = prometheus.NewDesc(m.DBPoolMaxConns, "Maximum connections.", nil, nil)
	descAcquires = prometheus.NewDesc(m.DBPoolAcquiresTotal, "Successful acquires.", nil, nil)
	descWait     = prometheus.NewDesc(m.DBPoolAcquireWaitSeconds, "Total time spent acquiring connections.", nil, nil)
	descEmpty    = prometheus.NewDesc(m.DBPoolEmptyAcquiresTotal, "Acquires that waited because the pool was empty.", nil, nil)
	descCanceled = prometheus.NewDesc(m.DBPoolCanceledAcquires, "Acquires cancelled by their context.", nil, nil)
	descSwaps    = prometheus.NewDesc(m.DBPoolSwapsTotal, "Pool swaps applied by config reloads.", nil, nil)
)

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAcquired, descIdle, descTotal, descMax, descAcquires, descWait, descEmpty, descCanceled, descSwaps} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	k := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	g(descAcquired, float64(s.AcquiredConns))
	g(descIdle, float64(s.IdleConns))
	g(descTotal, float64(s.TotalConns))
	g(descMax, float64(s.MaxConns))
	k(descAcquires, float64(s.AcquireCount))
	k(descWait, s.AcquireDuration.Seconds())
	k(descEmpty, float64(s.EmptyAcquireCount))
	k(descCanceled, float64(s.CanceledAcquireCount))
	k(descSwaps, float64(c.swaps()))
}
