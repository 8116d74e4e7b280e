// Package metrics names every metric pacer-api exposes on its admin port
// (DESIGN.md, Contract 2). The service registers them under these names and
// the operator's observer reads them by the same constants, so a rename is a
// compile error on both sides rather than a silent gap in tuning.
package metrics

// Namespace prefixes every pacer-api metric.
const Namespace = "pacer"

// HTTP traffic.
const (
	// RequestsTotal counts finished requests by route, method and status class.
	RequestsTotal = "pacer_http_requests_total"
	// RequestDuration is a histogram of request latency in seconds, from the
	// moment the request arrived (queue wait included), by route, method and
	// status class.
	RequestDuration = "pacer_http_request_duration_seconds"
	// RequestsInFlight is the number of requests holding a worker slot.
	RequestsInFlight = "pacer_http_requests_in_flight"
	// WriteStallsTotal counts responses the client did not read within the
	// write deadline (the request timeout plus the body's size at 64 KiB/s);
	// the connection was closed and the worker slot freed.
	WriteStallsTotal = "pacer_http_write_stalls_total"
	// PanicsTotal counts panics recovered while serving a request (in a
	// handler or a cache fill); the request was answered 500.
	PanicsTotal = "pacer_http_panics_total"
	// UnheldResponsesTotal counts answers written while their worker slot
	// was still held, by reason: larger than the held-answer bound, or over
	// the budget of bytes held for clients outside the worker limit.
	UnheldResponsesTotal = "pacer_http_unheld_responses_total"
	// RefusedConnectionsTotal counts connections closed at accept, by
	// reason: the total or the per-client connection cap.
	RefusedConnectionsTotal = "pacer_http_refused_connections_total"
	// OpenConnections is the number of open API connections.
	OpenConnections = "pacer_http_open_connections"
)

// Values of LabelReason for UnheldResponsesTotal and RefusedConnectionsTotal.
const (
	ReasonTooLarge  = "too_large"
	ReasonBudget    = "budget"
	ReasonTotal     = "total"
	ReasonPerClient = "per_client"
)

// Worker limit and queue.
const (
	// QueueLength is the number of requests waiting for a worker slot.
	QueueLength = "pacer_queue_length"
	// QueueRejectionsTotal counts requests shed with 503, by reason.
	QueueRejectionsTotal = "pacer_queue_rejections_total"
	// WorkerLimit is the current maximum of requests in flight.
	WorkerLimit = "pacer_worker_limit"
	// QueueDepthLimit is the current maximum queue length.
	QueueDepthLimit = "pacer_queue_depth_limit"
)

// Rate limiting.
const (
	// RateLimitedTotal counts requests refused with 429.
	RateLimitedTotal = "pacer_ratelimit_rejections_total"
	// RateLimitClients is the number of client buckets held.
	RateLimitClients = "pacer_ratelimit_clients"
)

// Cache.
const (
	CacheHitsTotal      = "pacer_cache_hits_total"
	CacheMissesTotal    = "pacer_cache_misses_total"
	CacheEntries        = "pacer_cache_entries"
	CacheEvictionsTotal = "pacer_cache_evictions_total"
	// CacheErrorsTotal counts failed calls to the shared (Redis) layer; the
	// request is still served from the database.
	CacheErrorsTotal = "pacer_cache_errors_total"
	// CacheFillsInFlight is the number of cache fills reading the database.
	CacheFillsInFlight = "pacer_cache_fills_in_flight"
	// CacheFillsWaiting is the number of cache fills waiting for a fill slot.
	CacheFillsWaiting = "pacer_cache_fills_waiting"
	// CacheFillLimit is the current bound on concurrent fills (half the
	// database pool).
	CacheFillLimit = "pacer_cache_fill_limit"
	// CacheFillRejectionsTotal counts misses answered 503 because no fill
	// slot freed within the queue timeout.
	CacheFillRejectionsTotal = "pacer_cache_fill_rejections_total"
)

// PostgreSQL pool (pgxpool.Stat), summed over the pools alive during a swap.
const (
	DBPoolAcquiredConns      = "pacer_db_pool_acquired_conns"
	DBPoolIdleConns          = "pacer_db_pool_idle_conns"
	DBPoolTotalConns         = "pacer_db_pool_total_conns"
	DBPoolMaxConns           = "pacer_db_pool_max_conns"
	DBPoolAcquiresTotal      = "pacer_db_pool_acquires_total"
	DBPoolAcquireWaitSeconds = "pacer_db_pool_acquire_wait_seconds_total"
	DBPoolEmptyAcquiresTotal = "pacer_db_pool_empty_acquires_total"
	DBPoolCanceledAcquires   = "pacer_db_pool_canceled_acquires_total"
	DBPoolSwapsTotal         = "pacer_db_pool_swaps_total"
)

// Configuration.
const (
	// ConfigGeneration is the generation of the configuration in effect.
	ConfigGeneration = "pacer_config_generation"
	// ConfigReloadsTotal counts reload attempts by result (success, failure).
	ConfigReloadsTotal = "pacer_config_reloads_total"
	// ConfigLastReloadSuccess is the Unix time of the last successful load.
	ConfigLastReloadSuccess = "pacer_config_last_reload_success_timestamp_seconds"
)

// Background jobs: the outbox in PostgreSQL (service/jobs).
const (
	// JobsQueued is the number of jobs pending in the outbox, every pod's
	// (read from PostgreSQL every few seconds).
	JobsQueued = "pacer_jobs_queued"
	// JobsOldestPendingAge is the age in seconds of the oldest pending job
	// (0 when none is pending): a worker that stopped keeping up shows here.
	JobsOldestPendingAge = "pacer_jobs_oldest_pending_age_seconds"
	// JobsEnqueuedTotal counts jobs this pod stored (each answered 202).
	JobsEnqueuedTotal = "pacer_jobs_enqueued_total"
	// JobsDoneTotal counts jobs this pod's workers applied.
	JobsDoneTotal = "pacer_jobs_done_total"
	// JobsRetriedTotal counts failed attempts that will be retried.
	JobsRetriedTotal = "pacer_jobs_retried_total"
	// JobsFailedTotal counts jobs that failed their last attempt.
	JobsFailedTotal = "pacer_jobs_failed_total"
)

// Label names.
const (
	LabelRoute  = "route"
	LabelMethod = "method"
	// LabelCode is the status class: 2xx, 3xx, 4xx or 5xx.
	LabelCode   = "code"
	LabelReason = "reason"
	LabelLayer  = "layer"
	LabelResult = "result"
)

// Values of LabelReason on QueueRejectionsTotal. Nothing is refused for
// shutting down: during a graceful shutdown queued and in-flight requests
// are served, and new connections are no longer accepted. A client that
// leaves while queued is not a rejection either: it is counted in
// RequestsTotal with code 4xx (recorded as 499).
const (
	ReasonQueueFull    = "queue_full"
	ReasonQueueTimeout = "queue_timeout"
)

// Values of LabelLayer on cache metrics.
const (
	LayerLocal = "local"
	LayerRedis = "redis"
)

// RequestDurationBuckets are the latency histogram's upper bounds in
// seconds: fine below 10ms, where a healthy pod lives, and wide enough above
// to place a p99 objective anywhere up to a few seconds.
var RequestDurationBuckets = []float64{
	0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03,
	0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2.5, 5, 10,
}
