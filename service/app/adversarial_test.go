package app

// The adversarial suite: pacer-api tried as a hostile client (or a hostile
// environment) would try it, one test per fault of issue 11, each against
// the real PostgreSQL. Run it alone with
//
//	go test -count=1 -run Adversarial ./service/app/
//
// To extend it, add a TestAdversarial<Fault> that states in its comment
// what was seen before the fix and what must hold now, and asserts the
// latter through the API, the admin port and the database; never a
// latency. FuzzHandler (fuzz_test.go) throws random requests at the whole
// handler.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// seedUsers creates n users (in batches of at most 1000).
func seedUsers(t *testing.T, a *testApp, n int) {
	t.Helper()
	for start := 0; start < n; start += 1000 {
		var b strings.Builder
		b.WriteString(`{"users":[`)
		for i := start; i < min(n, start+1000); i++ {
			if i > start {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"name":"User %d","email":"user%d@example.com"}`, i, i)
		}
		b.WriteString(`]}`)
		if res := a.do(t, "POST", "/v1/users/batch", b.String()); res.status != http.StatusCreated {
			t.Fatalf("seed: %d %s", res.status, res.body)
		}
	}
}

// stalledReader opens a connection with a tiny receive buffer, pipelines
// count requests for path and never reads an answer.
func stalledReader(t *testing.T, apiURL, path string, count int) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	host := strings.TrimPrefix(apiURL, "http://")
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	req := "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n\r\n"
	if _, err := conn.Write([]byte(strings.Repeat(req, count))); err != nil {
		t.Fatal(err)
	}
	return conn
}

// lockUsers takes an ACCESS EXCLUSIVE lock on the users table from a
// connection of the test's own, so every query on it waits; the returned
// function releases it.
func lockUsers(t *testing.T, dsn string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LOCK TABLE users IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

// Row 1: a client pipelining large answers and never reading held a
// worker slot forever (four such sockets and every other request got 503).
// Now the write is cut off at its deadline, the slot is freed and the
// stall counted.
func TestAdversarialStalledReaderFreesSlot(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.Workers.MaxInFlight, c.Workers.QueueDepth = 1, 4
		c.Server.RequestTimeout = config.D(time.Second)
	}})
	seedUsers(t, a, 1000)
	stalledReader(t, a.api, "/v1/users?limit=1000", 64)

	eventually(t, "a write stall counted", func() bool {
		return a.metric(t, "pacer_http_write_stalls_total") >= 1
	})
	// The stalled connection is still open; the only slot must be free.
	eventually(t, "another client served while the reader stalls", func() bool {
		return a.do(t, "GET", "/v1/users?limit=1", nil).status == http.StatusOK
	})
}

// Row 2: a 1 MiB batch of 349,000 `{}` allocated 59 MB before the count
// check, and a megabyte of commas in ?ids= 23 MB (32 in parallel: RSS 17 →
// 876 MB). Now a request allocates a small multiple of the body limit, and
// the header (URL) size is limited explicitly. Not parallel: the bound is
// read from the process's allocation counter.
func TestAdversarialHostileBodiesBoundedMemory(t *testing.T) {
	a := startApp(t, appOptions{})
	limit := a.Config().Server.MaxBodyBytes
	items := strings.Repeat("{},", int(limit)/3-10)
	batch := []byte(`{"users":[` + items[:len(items)-1] + `]}`)
	commas := "/v1/users?ids=" + strings.Repeat(",", int(limit))

	perRequest := func(fn func() response) (float64, response) {
		res := fn() // warm-up
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		const runs = 4
		for range runs {
			res = fn()
		}
		runtime.ReadMemStats(&after)
		return float64(after.TotalAlloc-before.TotalAlloc) / runs, res
	}
	// Client and server share the process, so the figure includes the
	// client's side of the request.
	bound := 4 * float64(limit)

	b, res := perRequest(func() response { return a.do(t, "POST", "/v1/users/batch", batch) })
	if res.status != http.StatusUnprocessableEntity || res.errorCode(t) != "validation_failed" {
		t.Fatalf("batch of %d items: %d %s", len(items)/3, res.status, res.body)
	}
	if b > bound {
		t.Fatalf("batch of empty objects: %.1f MiB allocated per request, want < %.0f MiB", b/(1<<20), bound/(1<<20))
	}

	b, status := 0.0, 0
	b, res = perRequest(func() response {
		resp, err := client.Get(a.api + commas)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status = resp.StatusCode
		return response{status: resp.StatusCode}
	})
	if status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MiB of commas in ?ids=: %d, want 431 (header limit)", res.status)
	}
	if b > bound {
		t.Fatalf("ids of commas: %.1f MiB allocated per request, want < %.0f MiB", b/(1<<20), bound/(1<<20))
	}
	// Under the header limit, the list is counted before it is split.
	if res := a.do(t, "GET", "/v1/users?ids="+strings.Repeat(",", 30_000), nil); res.status != 422 || res.errorCode(t) != "validation_failed" {
		t.Fatalf("30,000 commas: %d %s", res.status, res.body)
	}
}

// Row 3: a client that gives up while its read waits on a slow database
// was counted as 504 (5xx, which the tuner reads as a server fault), and
// the cache fill kept running with nobody waiting (goroutines 18 → 319).
// Now it is 499 (4xx), and the fill is cancelled with its last caller:
// the queries stop and their connections return to the pool while the
// database is still slow.
func TestAdversarialClientGivesUpOnSlowDatabase(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) {
		c.Server.RequestTimeout = config.D(time.Minute) // longer than the test
		c.Database.StatementTimeout = config.D(0)
	}})
	seedUsers(t, a, 20)
	release := lockUsers(t, dsn)

	impatient := &http.Client{Timeout: 300 * time.Millisecond}
	const route = `route="/v1/users/{id}"`
	var wg sync.WaitGroup
	for id := 1; id <= 8; id++ {
		wg.Go(func() {
			if res, err := impatient.Get(fmt.Sprintf("%s/v1/users/%d", a.api, id)); err == nil {
				res.Body.Close()
				t.Errorf("user %d answered %d while the table was locked", id, res.StatusCode)
			}
		})
	}
	wg.Wait()
	eventually(t, "every abandoned read recorded as 4xx (499)", func() bool {
		return a.metric(t, "pacer_http_requests_total", route, `code="4xx"`) == 8
	})
	eventually(t, "the abandoned queries stopped while the lock is held", func() bool {
		return a.metric(t, "pacer_db_pool_acquired_conns") == 0
	})
	if n := a.metric(t, "pacer_http_requests_total", route, `code="5xx"`); n != 0 {
		t.Fatalf("%v abandoned reads counted as 5xx", n)
	}
	release()
	if res := a.do(t, "GET", "/v1/users/1", nil); res.status != http.StatusOK {
		t.Fatalf("after the lock: %d %s", res.status, res.body)
	}
}

// Row 8: /readyz pinged through the request pool, so a pool saturated by
// slow queries made it answer 503 "database unreachable": every busy pod
// left rotation at once. Now it uses a connection of its own.
func TestAdversarialReadyWhilePoolSaturated(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) {
		c.Database.MinConns, c.Database.MaxConns = 0, 2
		c.Database.StatementTimeout = config.D(0)
		c.Server.RequestTimeout = config.D(time.Minute)
		c.Cache.TTL = config.D(0)
	}})
	seedUsers(t, a, 4)
	release := lockUsers(t, dsn)
	var wg sync.WaitGroup
	for id := 1; id <= 4; id++ {
		wg.Go(func() { a.do(t, "GET", fmt.Sprintf("/v1/users/%d", id), nil) })
	}
	eventually(t, "the request pool saturated", func() bool {
		return a.metric(t, "pacer_db_pool_acquired_conns") == 2
	})
	for range 3 {
		if s := a.status(t, a.admin+"/readyz"); s != http.StatusOK {
			t.Fatalf("/readyz = %d with a busy pool and a reachable database", s)
		}
	}
	release()
	wg.Wait()
}

// Row 9: SIGHUP without --config killed the process (exit 129, no graceful
// shutdown). Now it is a logged no-op. Not parallel: the signal goes to the
// whole test process.
func TestAdversarialSIGHUPWithoutConfig(t *testing.T) {
	a := startApp(t, appOptions{})
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the no-op reload logged", func() bool {
		return strings.Contains(a.logs.String(), "no --config file was given")
	})
	if res := a.do(t, "GET", "/v1/users/1", nil); res.status != http.StatusNotFound {
		t.Fatalf("after SIGHUP: %d %s", res.status, res.body)
	}
}

// Row 9: SIGTERM with one stalled reader: after the grace period, "jobs"
// and "pool" errors were logged though neither had failed. Now only the
// API server is reported.
func TestAdversarialShutdownReportsOnlyRealFailures(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.Server.ShutdownGracePeriod = config.D(500 * time.Millisecond)
		c.Server.RequestTimeout = config.D(time.Minute) // the write deadline outlasts the grace period
	}})
	seedUsers(t, a, 1000)
	stalledReader(t, a.api, "/v1/users?limit=1000", 64)
	// The socket buffers absorb the first answers; the reader is stalled
	// once its connection blocks writing an answer (outside the worker
	// limit since issue 20) and no more answers complete.
	answered := func() float64 {
		return a.metric(t, "pacer_http_requests_total", `route="/v1/users"`, `method="GET"`)
	}
	eventually(t, "the reader's connection stuck writing", func() bool {
		before := answered()
		time.Sleep(200 * time.Millisecond)
		return blockedHTTPWriters() >= 1 && answered() == before
	})
	a.cancel()
	var err error
	select {
	case err = <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatal("shutdown did not finish")
	}
	a.done <- err // for the cleanup
	if err == nil || !strings.Contains(err.Error(), "api server") {
		t.Fatalf("shutdown error = %v, want the api server's", err)
	}
	if msg := err.Error(); strings.Contains(msg, "background jobs") || strings.Contains(msg, "database pool") {
		t.Fatalf("shutdown reported steps that did not fail: %v", err)
	}
}

// Row 10: cycling client identities past rateLimit.maxClients evicted a
// drained bucket, and its client came back with a full one. Now an
// evicted client keeps its debt, and every 429 carries Retry-After.
func TestAdversarialIdentityCyclingKeepsLimits(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.RateLimit.RequestsPerSecond, c.RateLimit.Burst, c.RateLimit.MaxClients = 0.01, 2, 2
		c.RateLimit.ClientKey, c.RateLimit.Header = config.ClientKeyHeader, "X-Client"
	}})
	get := func(client string) response { return a.do(t, "GET", "/v1/users/1", nil, "X-Client", client) }
	for range 2 {
		if res := get("victim"); res.status != http.StatusNotFound {
			t.Fatalf("within the burst: %d", res.status)
		}
	}
	check429 := func(what string) {
		t.Helper()
		res := get("victim")
		if res.status != http.StatusTooManyRequests || res.header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d, Retry-After %q; want 429 with Retry-After", what, res.status, res.header.Get("Retry-After"))
		}
	}
	check429("drained")
	for i := range 6 {
		get(fmt.Sprintf("cycled-%d", i))
	}
	check429("after its bucket was evicted")
}

// Row 11: two reloads back to back that both change the pool swapped it
// in untracked goroutines that could land out of order. Now the swap is
// done when Reload returns, reloads are serialized, and the newest wins.
func TestAdversarialBackToBackPoolReloads(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := testConfig()
	testenv.WriteConfig(t, path, cfg)
	a := startApp(t, appOptions{configPath: path})
	for _, maxConns := range []int32{5, 7, 6, 9} {
		cfg.Generation++
		cfg.Database.MaxConns = maxConns
		testenv.WriteConfig(t, path, cfg)
		if err := a.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := a.pools.Current().Config().MaxConns; got != maxConns {
			t.Fatalf("generation %d: pool has maxConns %d, want %d", cfg.Generation, got, maxConns)
		}
	}
	if res := a.do(t, "GET", "/v1/users/1", nil); res.status != http.StatusNotFound {
		t.Fatalf("after the swaps: %d %s", res.status, res.body)
	}
}

// A guard for row 1's fix: a response's write deadline must not outlive
// it. A kept-alive connection idle past that deadline still carries
// net/http's "100 Continue" and the next answer (curl sends Expect:
// 100-continue for larger bodies). It holds because each response sets its
// own deadline and net/http resets the connection's between requests.
func TestAdversarialWriteDeadlineLiftedBetweenRequests(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.Server.RequestTimeout = config.D(100 * time.Millisecond)
	}})
	host := strings.TrimPrefix(a.api, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rd := bufio.NewReader(conn)
	read := func() *http.Response {
		t.Helper()
		res, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatalf("reading the answer: %v", err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	fmt.Fprintf(conn, "GET /v1/users/1 HTTP/1.1\r\nHost: %s\r\n\r\n", host)
	if res := read(); res.StatusCode != http.StatusNotFound {
		t.Fatalf("first request: %d", res.StatusCode)
	}
	time.Sleep(500 * time.Millisecond) // idle past the first answer's write deadline
	body := `{"name":"Kept","email":"kept@example.com"}`
	fmt.Fprintf(conn, "POST /v1/users HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n%s",
		host, len(body), body)
	res := read()
	if res.StatusCode == http.StatusContinue {
		res = read()
	}
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("second request on the kept-alive connection: %d", res.StatusCode)
	}
}

// Issue 11, "misses not starved by hits": a cache hit queued for a worker
// slot behind the misses, so under saturation with a cold cache a hit
// waited as long as a database read (cached p99 115–350 ms at 64
// connections). Now a hit is answered before the worker limit: with every
// slot held by a miss waiting on a locked table and no queue, a miss is
// shed with 503 while a cached user is still answered 200 (X-Cache: hit),
// and the hit took no slot.
func TestAdversarialCacheHitNotQueuedBehindMisses(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) {
		c.Workers.MaxInFlight, c.Workers.QueueDepth = 2, 0
		c.Server.RequestTimeout = config.D(time.Minute) // longer than the test
		c.Database.StatementTimeout = config.D(0)
	}})
	seedUsers(t, a, 4)
	if res := a.do(t, "GET", "/v1/users/1", nil); res.status != http.StatusOK || res.header.Get("X-Cache") != "miss" {
		t.Fatalf("first read of user 1: %d, X-Cache %q", res.status, res.header.Get("X-Cache"))
	}

	release := lockUsers(t, dsn)
	var wg sync.WaitGroup
	for _, id := range []int{2, 3} {
		wg.Go(func() {
			if res := a.do(t, "GET", fmt.Sprintf("/v1/users/%d", id), nil); res.status != http.StatusOK {
				t.Errorf("user %d after the lock: %d %s", id, res.status, res.body)
			}
		})
	}
	eventually(t, "both worker slots held by misses", func() bool {
		return a.metric(t, "pacer_http_requests_in_flight") == 2
	})
	if res := a.do(t, "GET", "/v1/users/4", nil); res.status != http.StatusServiceUnavailable {
		t.Fatalf("a miss with every slot busy and no queue: %d %s, want 503", res.status, res.body)
	}
	for range 3 {
		res := a.do(t, "GET", "/v1/users/1", nil)
		if res.status != http.StatusOK || res.header.Get("X-Cache") != "hit" {
			t.Fatalf("cached user 1 with every slot busy: %d %s, X-Cache %q", res.status, res.body, res.header.Get("X-Cache"))
		}
	}
	if n := a.metric(t, "pacer_http_requests_in_flight"); n != 2 {
		t.Fatalf("in flight = %v after the hits, want the 2 misses only", n)
	}
	release()
	wg.Wait()
	// Hits are counted like any request: 1 fill + 3 hits so far answered 2xx
	// on the route, plus the two misses now done. A request is counted just
	// after its answer is sent, so the client may read it a moment before.
	eventually(t, "6 answers counted 2xx on /v1/users/{id}", func() bool {
		return a.metric(t, "pacer_http_requests_total", `route="/v1/users/{id}"`, `code="2xx"`) == 6
	})
	if n := a.metric(t, "pacer_http_requests_total", `route="/v1/users/{id}"`, `code="2xx"`); n != 6 {
		t.Fatalf("2xx on /v1/users/{id} = %v, want 6", n)
	}
}
