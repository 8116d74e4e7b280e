package metrics

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/controllers/tuning"
	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// observeAfter waits until the last observation is older than the Pods
// source's shortest window (so the new window starts at it), then observes.
func observeAfter(t *testing.T, src Source, tg Target, last time.Time) (tuning.Window, time.Time) {
	t.Helper()
	if wait := time.Until(last.Add(1100 * time.Millisecond)); wait > 0 {
		time.Sleep(wait)
	}
	w, err := src.Observe(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("window: %+v", w)
	return w, time.Now()
}

func withGeneration(g int64) func(*config.Config) { return func(c *config.Config) { c.Generation = g } }

// TestPodsObserveRealService scrapes two real pacer-api pods before and
// after a bounded burst of loopback traffic and checks the window against
// the traffic sent.
func TestPodsObserveRealService(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startPod(t, podOptions{name: "api-a", dsn: dsn, mutate: withGeneration(3)})
	b := startPod(t, podOptions{name: "api-b", dsn: dsn, mutate: withGeneration(3)})
	users := createUsers(t, a, 10)

	src := NewPods(testPodsOptions)
	tg := Target{Namespace: "ns", Name: "svc", Pods: []Pod{a.Pod(), b.Pod()}, Generation: 3, MinRequests: 100}
	w, last := observeAfter(t, src, tg, time.Time{})
	if w.Sufficient || !strings.Contains(w.Reason, "2 of 2 pods have no earlier sample yet") {
		t.Fatalf("first observation: Sufficient=%v Reason=%q; want insufficient, waiting for a second scrape", w.Sufficient, w.Reason)
	}

	// 400 reads on a, 200 on b over 10 users (cached after the first
	// read), and 50 reads of a user that does not exist on b.
	ta := traffic{n: 400, workers: 4, maxTime: 30 * time.Second, req: func(i int) (*http.Request, error) {
		return http.NewRequest(http.MethodGet, a.api+users[i%len(users)], nil)
	}}.run(t)
	tb := traffic{n: 250, workers: 4, maxTime: 30 * time.Second, req: func(i int) (*http.Request, error) {
		if i%5 == 0 {
			return http.NewRequest(http.MethodGet, b.api+"/v1/users/999999", nil)
		}
		return http.NewRequest(http.MethodGet, b.api+users[i%len(users)], nil)
	}}.run(t)
	sent := float64(ta.total() + tb.total())
	if sent != 650 || ta.count(func(c int) bool { return c != 200 }) != 0 || tb.count(func(c int) bool { return c == 404 }) != 50 {
		t.Fatalf("traffic: a %v, b %v; want 400 and 200+50 404s", ta.codes, tb.codes)
	}

	w, _ = observeAfter(t, src, tg, last)
	if !w.Sufficient || w.Reason != "" {
		t.Fatalf("Sufficient=%v Reason=%q; want a sufficient window", w.Sufficient, w.Reason)
	}
	if w.Pods != 2 || w.Generation != 3 {
		t.Errorf("Pods=%d Generation=%d, want 2 and 3", w.Pods, w.Generation)
	}
	// Every request was sent between the two scrapes: the rate times the
	// span is about the number sent (each pod's rate is over its own span,
	// which differ by the skew between the scrapes; the single-pod tests
	// below check exact counts).
	span := w.End.Sub(w.Start).Seconds()
	if got := w.RequestRate * span; !within(got, sent, 0.2) {
		t.Errorf("RequestRate %.1f/s over %.2fs = %.0f requests, sent %.0f", w.RequestRate, span, got, sent)
	}
	if w.ErrorRate != 0 || w.ShedRate != 0 || w.RateLimitedRate != 0 {
		t.Errorf("ErrorRate=%v ShedRate=%v RateLimitedRate=%v, want 0 (no 5xx, 503 or 429 sent)", w.ErrorRate, w.ShedRate, w.RateLimitedRate)
	}
	if w.P50 <= 0 || w.P50 > w.P95 || w.P95 > w.P99 || w.P99 >= 5*time.Second {
		t.Errorf("quantiles p50=%s p95=%s p99=%s, want 0 < p50 <= p95 <= p99 < 5s", w.P50, w.P95, w.P99)
	}
	// Reads of existing users hit the cache after the first one per pod;
	// reads of the missing user always miss.
	if w.CacheHitRatio < 0.5 || w.CacheHitRatio > 1 {
		t.Errorf("CacheHitRatio=%v, want most of 600 repeated reads of 10 users to hit", w.CacheHitRatio)
	}
	if got := w.CacheLookupRate * span; !within(got, sent, 0.2) {
		t.Errorf("CacheLookupRate %.1f/s over %.2fs = %.0f lookups, want about one per read (%.0f)", w.CacheLookupRate, span, got, sent)
	}
	if w.CacheEntries <= 0 {
		t.Errorf("CacheEntries=%v, want the cached users", w.CacheEntries)
	}
	def := config.Default()
	if w.WorkerLimit != def.Workers.MaxInFlight || w.PoolMaxConns != int(def.Database.MaxConns) {
		t.Errorf("WorkerLimit=%d PoolMaxConns=%d, want the config's %d and %d", w.WorkerLimit, w.PoolMaxConns, def.Workers.MaxInFlight, def.Database.MaxConns)
	}
	// Requests were in flight during the window, whatever the gauges read
	// at the two scrapes (Little's law).
	if w.InFlight <= 0 || w.Utilization <= 0 || w.Utilization > 1 || w.QueueLength < 0 {
		t.Errorf("InFlight=%v Utilization=%v QueueLength=%v; want some in flight", w.InFlight, w.Utilization, w.QueueLength)
	}
	if w.PoolAcquireWait < 0 || w.PoolAcquireWait > 5*time.Second || w.PoolEmptyAcquireRate < 0 {
		t.Errorf("PoolAcquireWait=%s PoolEmptyAcquireRate=%v out of range", w.PoolAcquireWait, w.PoolEmptyAcquireRate)
	}
	// The pods run in this process, so this is the test process's CPU use.
	if w.CPUCores <= 0 || w.CPUCores > 64 {
		t.Errorf("CPUCores=%v, want the process's CPU use", w.CPUCores)
	}
}

// TestPodsGenerationRollout follows a config change through two pods: the
// window counts only once both run the new generation for a whole window.
func TestPodsGenerationRollout(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startPod(t, podOptions{name: "api-a", dsn: dsn, mutate: withGeneration(4)})
	b := startPod(t, podOptions{name: "api-b", dsn: dsn, mutate: withGeneration(4)})
	load := func() {
		for _, p := range []*apiPod{a, b} {
			traffic{n: 60, workers: 2, maxTime: 30 * time.Second, req: get(p.api + "/v1/users/1")}.run(t)
		}
	}

	src := NewPods(testPodsOptions)
	tg := Target{Namespace: "ns", Name: "svc", Pods: []Pod{a.Pod(), b.Pod()}, Generation: 4, MinRequests: 100}
	_, last := observeAfter(t, src, tg, time.Time{})
	load()
	w, last := observeAfter(t, src, tg, last)
	if !w.Sufficient || w.Generation != 4 {
		t.Fatalf("before the change: Sufficient=%v Generation=%d Reason=%q", w.Sufficient, w.Generation, w.Reason)
	}

	// The operator renders generation 5; only b has picked it up.
	tg.Generation = 5
	b.setGeneration(t, 5)
	load()
	w, last = observeAfter(t, src, tg, last)
	if want := "1 of 2 pods still run config generation 4, want 5 (api-a)"; w.Sufficient || w.Reason != want || w.Generation != 4 {
		t.Errorf("half rolled out: Sufficient=%v Generation=%d Reason=%q; want insufficient at 4, %q", w.Sufficient, w.Generation, w.Reason, want)
	}

	// a picks it up: both run 5 now, but a ran 4 during this window.
	a.setGeneration(t, 5)
	load()
	w, last = observeAfter(t, src, tg, last)
	if want := "1 of 2 pods changed config generation during the window (api-a); the next window counts"; w.Sufficient || w.Reason != want {
		t.Errorf("just rolled out: Sufficient=%v Reason=%q; want %q", w.Sufficient, w.Reason, want)
	}

	load()
	w, _ = observeAfter(t, src, tg, last)
	if !w.Sufficient || w.Generation != 5 || w.Pods != 2 {
		t.Errorf("a full window at 5: Sufficient=%v Generation=%d Pods=%d Reason=%q", w.Sufficient, w.Generation, w.Pods, w.Reason)
	}
}

// TestPodsUnreachableAndForgotten: a pod that cannot be scraped makes the
// window insufficient and says why; pods that leave the target and deleted
// targets are forgotten.
func TestPodsUnreachableAndForgotten(t *testing.T) {
	t.Parallel()
	a := startPod(t, podOptions{name: "api-a", dsn: testenv.FreshDatabase(t)})
	// A pod whose admin port answers 503, as one that is shutting down.
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
	}))
	defer down.Close()
	addr := down.Listener.Addr().(*net.TCPAddr)
	gone := Pod{Name: "gone", Host: addr.IP.String(), Port: int32(addr.Port)}

	src := NewPods(testPodsOptions)
	tg := Target{Namespace: "ns", Name: "svc", Pods: []Pod{a.Pod(), gone}}
	_, last := observeAfter(t, src, tg, time.Time{})
	w, last := observeAfter(t, src, tg, last)
	if want := "1 of 2 pods not observed (gone: scrape " + gone.Addr() + ": status 503 Service Unavailable)"; w.Sufficient || w.Reason != want || w.Pods != 1 {
		t.Errorf("Sufficient=%v Pods=%d Reason=%q; want insufficient over 1 pod, %q", w.Sufficient, w.Pods, w.Reason, want)
	}

	// The pod leaves the target: forgotten, and the window counts again.
	tg.Pods = []Pod{a.Pod()}
	w, last = observeAfter(t, src, tg, last)
	if !w.Sufficient || w.Pods != 1 {
		t.Errorf("without the gone pod: Sufficient=%v Pods=%d Reason=%q", w.Sufficient, w.Pods, w.Reason)
	}
	src.mu.Lock()
	kept := len(src.targets[tg.key()].pods)
	src.mu.Unlock()
	if kept != 1 {
		t.Errorf("history kept for %d pods, want 1", kept)
	}

	// A pod listed twice or without a host is the caller's bug.
	if _, err := src.Observe(context.Background(), Target{Namespace: "ns", Name: "svc", Pods: []Pod{a.Pod(), a.Pod()}}); err == nil {
		t.Error("a pod listed twice: no error")
	}
	if _, err := src.Observe(context.Background(), Target{Namespace: "ns", Name: "svc", Pods: []Pod{{Name: "x"}}}); err == nil {
		t.Error("a pod without a host: no error")
	}

	// The TunedService is deleted: everything is forgotten.
	src.Forget("ns", "svc")
	w, _ = observeAfter(t, src, tg, last)
	if w.Sufficient || !strings.Contains(w.Reason, "no earlier sample") {
		t.Errorf("after Forget: Sufficient=%v Reason=%q; want a first scrape", w.Sufficient, w.Reason)
	}
}

// TestPodsRestartedPod: counters that fall because the pod restarted are
// read as counting from zero, as Prometheus's rate() does.
func TestPodsRestartedPod(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startPod(t, podOptions{name: "api-a", dsn: dsn})
	adminAddr := a.AdminAddr()

	src := NewPods(testPodsOptions)
	tg := Target{Namespace: "ns", Name: "svc", Pods: []Pod{a.Pod()}}
	_, last := observeAfter(t, src, tg, time.Time{})
	traffic{n: 300, workers: 4, maxTime: 30 * time.Second, req: get(a.api + "/v1/users/1")}.run(t)
	_, last = observeAfter(t, src, tg, last)

	// The pod restarts on the same address (same name, same history).
	a.stop()
	a2 := startPod(t, podOptions{name: "api-a", dsn: dsn, adminAddr: adminAddr})
	sent := traffic{n: 100, workers: 2, maxTime: 30 * time.Second, req: get(a2.api + "/v1/users/1")}.run(t).total()
	w, _ := observeAfter(t, src, tg, last)
	span := w.End.Sub(w.Start).Seconds()
	if got := w.RequestRate * span; math.Abs(got-float64(sent)) > 0.5 {
		t.Errorf("after a restart: %.1f requests in the window, want the %d sent since", got, sent)
	}
	if !w.Sufficient || w.P99 <= 0 {
		t.Errorf("after a restart: Sufficient=%v P99=%s Reason=%q", w.Sufficient, w.P99, w.Reason)
	}
}

// TestPodsShedAndRateLimited: 503s from the worker queue and 429s from the
// rate limiter are counted as the clients saw them.
func TestPodsShedAndRateLimited(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	narrow := startPod(t, podOptions{name: "narrow", dsn: dsn, mutate: func(c *config.Config) {
		c.Workers.MaxInFlight, c.Workers.QueueDepth, c.Workers.QueueTimeout = 1, 0, config.D(0)
	}})
	limited := startPod(t, podOptions{name: "limited", dsn: dsn, mutate: func(c *config.Config) {
		c.RateLimit.RequestsPerSecond, c.RateLimit.Burst = 5, 5
	}})
	createUsers(t, narrow, 20)

	for _, tc := range []struct {
		pod     *apiPod
		traffic traffic
	}{
		// Listing users is a database query; 16 clients on 1 worker without
		// a queue are shed.
		{narrow, traffic{n: 300, workers: 16, maxTime: 30 * time.Second, req: get(narrow.api + "/v1/users?limit=20")}},
		{limited, traffic{n: 100, workers: 4, maxTime: 30 * time.Second, req: get(limited.api + "/v1/users/1")}},
	} {
		t.Run(tc.pod.name, func(t *testing.T) {
			src := NewPods(testPodsOptions)
			tg := Target{Namespace: "ns", Name: tc.pod.name, Pods: []Pod{tc.pod.Pod()}}
			_, last := observeAfter(t, src, tg, time.Time{})
			got := tc.traffic.run(t)
			w, _ := observeAfter(t, src, tg, last)
			span := w.End.Sub(w.Start).Seconds()
			n503 := got.count(func(c int) bool { return c == http.StatusServiceUnavailable })
			n5xx := got.count(func(c int) bool { return c >= 500 })
			n429 := got.count(func(c int) bool { return c == http.StatusTooManyRequests })
			t.Logf("responses: %v", got.codes)
			for _, c := range []struct {
				what string
				rate float64
				want int
			}{
				{"requests", w.RequestRate, got.total()},
				{"5xx", w.ErrorRate, n5xx},
				{"shed 503s", w.ShedRate, n503},
				{"429s", w.RateLimitedRate, n429},
			} {
				if math.Abs(c.rate*span-float64(c.want)) > 0.5 {
					t.Errorf("%s: %.2f/s over %.2fs = %.1f, clients saw %d", c.what, c.rate, span, c.rate*span, c.want)
				}
			}
			if tc.pod == narrow && n503 == 0 {
				t.Errorf("16 clients on 1 worker without a queue were never shed: %v", got.codes)
			}
			if tc.pod == narrow && (w.InFlight <= 0 || w.InFlight > 1 || w.WorkerLimit != 1) {
				t.Errorf("InFlight=%v WorkerLimit=%d, want between 0 and the one worker", w.InFlight, w.WorkerLimit)
			}
			if tc.pod == limited && n429 == 0 {
				t.Errorf("100 requests at a 5/s limit were never refused: %v", got.codes)
			}
		})
	}
}

// TestPodsScrapeFailures: each way a scrape fails is reported for its pod,
// and scrapes run at most Concurrency at a time.
func TestPodsScrapeFailures(t *testing.T) {
	t.Parallel()
	serve := func(h http.HandlerFunc) Pod {
		s := httptest.NewServer(h)
		t.Cleanup(s.Close)
		addr := s.Listener.Addr().(*net.TCPAddr)
		return Pod{Host: addr.IP.String(), Port: int32(addr.Port)}
	}
	named := func(name string, p Pod) Pod { p.Name = name; return p }
	exposition := "# TYPE pacer_config_generation gauge\npacer_config_generation 1\n"

	pods := []Pod{
		named("protobuf", serve(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited")
			_, _ = w.Write([]byte{0x0a})
		})),
		named("huge", serve(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte(exposition + "# TYPE pacer_cache_entries gauge\n"))
			for i := range 100 {
				fmt.Fprintf(w, "pacer_cache_entries{i=\"%d\"} 1\n", i)
			}
		})),
		named("slow", serve(func(w http.ResponseWriter, r *http.Request) {
			select { // bounded: the scrape times out long before
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
			}
		})),
		named("garbage", serve(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write([]byte("pacer_config_generation{ 1\n"))
		})),
	}
	src := NewPods(PodsOptions{Timeout: 300 * time.Millisecond, MaxBodyBytes: 1024})
	w, err := src.Observe(context.Background(), Target{Namespace: "ns", Name: "svc", Pods: pods})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"4 of 4 pods not observed",
		"protobuf: scrape " + pods[0].Addr() + `: Content-Type "application/vnd.google.protobuf`,
		"huge: scrape " + pods[1].Addr() + ": exposition larger than 1024 bytes",
		"slow: scrape " + pods[2].Addr() + ": no answer within 300ms",
		"garbage: scrape " + pods[3].Addr() + ": parse metrics:",
	} {
		if !strings.Contains(w.Reason, want) {
			t.Errorf("Reason lacks %q:\n%s", want, w.Reason)
		}
	}
	if w.Sufficient || w.Pods != 0 {
		t.Errorf("Sufficient=%v Pods=%d, want an insufficient window over no pods", w.Sufficient, w.Pods)
	}

	// Concurrency: 6 pods that each take 50ms, 2 scrapes at a time.
	var (
		mu             sync.Mutex
		active, most   int
		concurrentPods []Pod
	)
	for i := range 6 {
		concurrentPods = append(concurrentPods, named(fmt.Sprintf("p%d", i), serve(func(w http.ResponseWriter, _ *http.Request) {
			mu.Lock()
			active++
			most = max(most, active)
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
			mu.Lock()
			active--
			mu.Unlock()
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			_, _ = w.Write([]byte(exposition))
		})))
	}
	src = NewPods(PodsOptions{Concurrency: 2, Timeout: 20 * time.Second})
	w, err = src.Observe(context.Background(), Target{Namespace: "ns", Name: "many", Pods: concurrentPods, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Reason, "6 of 6 pods have no earlier sample") {
		t.Errorf("Reason = %q, want 6 first scrapes", w.Reason)
	}
	if most > 2 {
		t.Errorf("%d scrapes at once, want at most 2", most)
	}

	// A canceled context is an error, not a window.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Observe(ctx, Target{Namespace: "ns", Name: "many", Pods: concurrentPods}); err == nil {
		t.Error("Observe with a canceled context: no error")
	}
}

// Concurrency is per target: a target whose pod hangs holds no slot that
// another target's scrape needs (main shared 8 slots across all targets).
func TestPodsHungTargetDoesNotHoldUpAnother(t *testing.T) {
	t.Parallel()
	hungDone := make(chan struct{})
	accepted := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case accepted <- struct{}{}:
		default:
		}
		<-r.Context().Done() // until the scrape gives up
	}))
	t.Cleanup(hang.Close)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write([]byte("# TYPE pacer_config_generation gauge\npacer_config_generation 1\n"))
	}))
	t.Cleanup(ok.Close)
	pod := func(name, url string) Pod {
		addr := strings.TrimPrefix(url, "http://")
		host, port, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(port)
		return Pod{Name: name, Host: host, Port: int32(n)}
	}

	src := NewPods(PodsOptions{Concurrency: 1, Timeout: 10 * time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(hungDone)
		_, _ = src.Observe(ctx, Target{Namespace: "ns", Name: "hung", Pods: []Pod{pod("h", hang.URL)}})
	}()
	t.Cleanup(func() { cancel(); <-hungDone })
	<-accepted

	// Bounded so that a healthy scrape stuck behind the hung one fails the
	// test rather than hanging it; no assertion is about time.
	okCtx, okCancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer okCancel()
	w, err := src.Observe(okCtx, Target{Namespace: "ns", Name: "ok", Pods: []Pod{pod("p", ok.URL)}, Generation: 1})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.Reason, "1 of 1 pods have no earlier sample") {
		t.Errorf("Reason = %q, want the healthy pod scraped", w.Reason)
	}
	select {
	case <-hungDone:
		t.Error("the healthy target was scraped only after the hung one ended")
	default:
	}
}
