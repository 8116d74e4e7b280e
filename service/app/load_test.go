package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// load runs workers that alternate uncached reads and creates until stop is
// closed or each has sent maxPerWorker requests, and counts any request
// that fails (a transport error or a 5xx).
type load struct {
	ok, failed atomic.Int64
	firstErr   atomic.Value
	stop       chan struct{}
	wg         sync.WaitGroup
}

func startLoad(t *testing.T, a *testApp, workers int, readID int64) *load {
	t.Helper()
	const maxPerWorker = 20_000 // bounded even if stop never comes
	l := &load{stop: make(chan struct{})}
	httpClient := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	for w := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := range maxPerWorker {
				select {
				case <-l.stop:
					return
				default:
				}
				var req *http.Request
				if i%4 == 0 {
					body := fmt.Sprintf(`{"name":"load","email":"load-%d-%d@example.com"}`, w, i)
					req, _ = http.NewRequest("POST", a.api+"/v1/users", strings.NewReader(body))
				} else {
					req, _ = http.NewRequest("GET", fmt.Sprintf("%s/v1/users/%d", a.api, readID), nil)
				}
				res, err := httpClient.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode >= 500 {
						err = fmt.Errorf("%s %s: status %d", req.Method, req.URL.Path, res.StatusCode)
					}
				}
				if err != nil {
					l.failed.Add(1)
					l.firstErr.CompareAndSwap(nil, err)
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	return l
}

func (l *load) halt() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) check(t *testing.T) {
	t.Helper()
	if n := l.failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, n+l.ok.Load(), l.firstErr.Load())
	}
	if l.ok.Load() == 0 {
		t.Fatal("no request was served")
	}
	t.Logf("%d requests, none failed", l.ok.Load())
}

func (l *load) waitFor(t *testing.T, n int64) {
	t.Helper()
	start := l.ok.Load()
	eventually(t, fmt.Sprintf("%d more requests", n), func() bool { return l.ok.Load() >= start+n || l.failed.Load() > 0 })
}

// TestPoolSwapUnderLoad resizes the pool live several times while reads
// (uncached, so each one uses the pool) and writes run: none fails.
func TestPoolSwapUnderLoad(t *testing.T) {
	t.Parallel()
	path := t.TempDir() + "/config.yaml"
	cfg := testConfig()
	cfg.Cache.TTL = config.D(0)
	cfg.Log.Level = "info"
	testenv.WriteConfig(t, path, cfg)
	a := startApp(t, appOptions{configPath: path})
	u := createUser(t, a, "Pat", "pat@example.com")

	l := startLoad(t, a, 16, u.ID)
	for i, maxConns := range []int32{2, 8, 3, 16} {
		l.waitFor(t, 200)
		reloadTo(t, a, path, &cfg, func(c *config.Config) {
			c.Database.MaxConns, c.Database.MinConns = maxConns, 1
		})
		eventually(t, "swap done", func() bool { return a.metric(t, "pacer_db_pool_swaps_total") == float64(i+1) })
	}
	l.waitFor(t, 200)
	l.halt()
	l.check(t)
	eventually(t, "old pools closed", func() bool { return a.metric(t, "pacer_db_pool_max_conns") == 16 })
}

// TestShutdownUnderLoad cancels the app's context (what SIGTERM does in
// main) while requests run, one is in flight mid-body and one is queued,
// and welcome jobs are pending: /readyz turns false first, clients that
// watch it stop sending, every started request completes, jobs drain, and
// Wait returns nil (exit 0).
func TestShutdownUnderLoad(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) {
		c.Server.DrainDelay = config.D(500 * time.Millisecond)
		c.Server.RequestTimeout = config.D(time.Minute) // the slow body is not cut short
		c.Workers.MaxInFlight = 8
		c.Workers.QueueDepth = 1000
		c.Workers.QueueTimeout = config.D(30 * time.Second)
		c.Log.Level = "info"
	}})
	u := createUser(t, a, "Sam", "sam@example.com")

	l := startLoad(t, a, 16, u.ID)
	// Like a load balancer, stop sending once /readyz is false.
	go func() {
		for a.status(t, a.admin+"/readyz") == 200 {
			time.Sleep(2 * time.Millisecond)
		}
		close(l.stop)
	}()
	l.waitFor(t, 300)
	slow := slowRequest(t, a, "slow@example.com")
	eventually(t, "slow request in flight", func() bool { return a.limiter.Stats().InFlight >= 1 })

	const jobs = 50
	for range jobs {
		if res := a.do(t, "POST", fmt.Sprintf("/v1/users/%d/welcome", u.ID), nil); res.status != 202 {
			t.Fatalf("welcome: %d", res.status)
		}
	}
	a.cancel() // SIGTERM
	eventually(t, "readyz false", func() bool { return a.status(t, a.admin+"/readyz") != 200 })
	l.wg.Wait()
	// The in-flight request is still being read after the listener closed.
	if res := slow(); res == nil || res.StatusCode != 201 {
		t.Fatalf("in-flight request after SIGTERM: %v", res)
	}
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("Wait = %v, want a clean shutdown", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	a.done <- nil // for the cleanup
	l.check(t)

	// Every job acknowledged with 202 was either applied before the pod
	// stopped or is still stored for the next pod: none is lost.
	done := int(testutil.ToFloat64(a.metrics.Jobs.Done))
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pending, welcomed int
	if err := conn.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM jobs WHERE state = 'pending'),
		(SELECT count(*) FROM users WHERE welcomed_at IS NOT NULL)`).Scan(&pending, &welcomed); err != nil {
		t.Fatal(err)
	}
	if done+pending != jobs || (done > 0) != (welcomed == 1) {
		t.Fatalf("%d jobs done and %d pending of %d acknowledged, %d users welcomed: a job was lost", done, pending, jobs, welcomed)
	}
}
