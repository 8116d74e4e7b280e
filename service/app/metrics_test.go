package app

import (
	"testing"

	m "github.com/pacer-dev/pacer/service/metrics"
)

// TestContractMetricsExposed checks Contract 2: every name the operator
// reads is on /metrics from the start, with the Go and process collectors.
func TestContractMetricsExposed(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{})
	a.do(t, "GET", "/v1/users/1", nil) // one request, so the route series exist
	names := []string{
		m.RequestsTotal, m.RequestDuration + "_bucket", m.RequestsInFlight,
		m.QueueLength, m.QueueRejectionsTotal, m.WorkerLimit, m.QueueDepthLimit,
		m.RateLimitedTotal, m.RateLimitClients,
		m.CacheHitsTotal, m.CacheMissesTotal, m.CacheEntries, m.CacheEvictionsTotal, m.CacheErrorsTotal,
		m.DBPoolAcquiredConns, m.DBPoolIdleConns, m.DBPoolTotalConns, m.DBPoolMaxConns,
		m.DBPoolAcquiresTotal, m.DBPoolAcquireWaitSeconds, m.DBPoolEmptyAcquiresTotal,
		m.DBPoolCanceledAcquires, m.DBPoolSwapsTotal,
		m.ConfigGeneration, m.ConfigReloadsTotal, m.ConfigLastReloadSuccess,
		m.JobsQueued, m.JobsOldestPendingAge, m.JobsEnqueuedTotal, m.JobsDoneTotal, m.JobsRetriedTotal, m.JobsFailedTotal,
		"go_goroutines", "process_resident_memory_bytes",
	}
	for _, name := range names {
		if a.metric(t, name) < 0 {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if a.metric(t, m.RequestsTotal, `route="/v1/users/{id}"`, `method="GET"`, `code="4xx"`) != 1 {
		t.Error("the 404 for GET /v1/users/1 is not counted under its route, method and status class")
	}
	if a.status(t, a.admin+"/debug/pprof/") != 404 {
		t.Error("pprof served without server.enablePprof")
	}
}
