package metrics

import (
	"context"
	"maps"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/pacer-dev/pacer/controllers/tuning"
	"github.com/pacer-dev/pacer/internal/testenv"
)

func TestSelectorAndQueries(t *testing.T) {
	t.Parallel()
	tg := Target{Namespace: "team-a", Name: "svc", Pods: []Pod{{Name: "svc-7d9f-abc"}, {Name: "svc.0"}}}
	if got, want := selector(tg), `namespace="team-a",pod=~"svc-7d9f-abc|svc\\.0"`; got != want {
		t.Errorf("selector = %s, want %s", got, want)
	}
	q := combine(queries(selector(tg), "30s"))
	for _, want := range []string{
		`histogram_quantile(0.99, sum by (le) (rate(pacer_http_request_duration_seconds_bucket{namespace="team-a",pod=~"svc-7d9f-abc|svc\\.0"}[30s])))`,
		`label_replace(max by (pod) (count_over_time(pacer_config_generation{namespace="team-a",pod=~"svc-7d9f-abc|svc\\.0"}[30s])), "pacer_result", "gen_samples", "", "")`,
		`sum(rate(pacer_http_requests_total{namespace="team-a",pod=~"svc-7d9f-abc|svc\\.0",code="5xx"}[30s]))`,
	} {
		if !strings.Contains(q, want) {
			t.Errorf("query lacks %s:\n%s", want, q)
		}
	}
	p, err := NewPrometheus(PrometheusOptions{URL: "http://127.0.0.1:1", ScrapeInterval: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ interval, want time.Duration }{{0, time.Minute}, {30 * time.Second, time.Minute}, {5 * time.Minute, 5 * time.Minute}} {
		if got := p.Range(Target{Interval: c.interval}); got != c.want {
			t.Errorf("Range(interval %s) = %s, want %s", c.interval, got, c.want)
		}
	}
}

// TestPrometheusAgreesWithPods runs two real pacer-api pods under steady
// loopback traffic, scraped every second by a real Prometheus with the
// namespace and pod labels a PodMonitor gives, and checks that the
// Prometheus source's window over an interval agrees with the Pods
// source's window over the same interval.
func TestPrometheusAgreesWithPods(t *testing.T) {
	t.Parallel()
	testenv.PrometheusBin(t) // skip (or fail in CI) before starting anything
	dsn := testenv.FreshDatabase(t)
	a := startPod(t, podOptions{name: "api-a", dsn: dsn, mutate: withGeneration(3)})
	b := startPod(t, podOptions{name: "api-b", dsn: dsn, mutate: withGeneration(3)})
	users := createUsers(t, a, 10)
	labels := func(p *apiPod) map[string]string { return map[string]string{LabelNamespace: "ns", LabelPod: p.name} }
	prom := testenv.StartPrometheus(t, testenv.PrometheusOptions{
		ScrapeInterval: time.Second,
		Targets: []testenv.PrometheusTarget{
			{Addr: a.AdminAddr(), Labels: labels(a)},
			{Addr: b.AdminAddr(), Labels: labels(b)},
		},
	})
	tg := Target{Namespace: "ns", Name: "svc", Pods: []Pod{a.Pod(), b.Pod()}, Generation: 3, MinRequests: 100}

	// Steady traffic in the background: paced, bounded in count and time,
	// stopped once both windows are taken.
	done, stop := make(chan struct{}), make(chan struct{})
	for _, p := range []*apiPod{a, b} {
		go func() {
			defer func() { done <- struct{}{} }()
			traffic{n: 10000, workers: 2, pace: 10 * time.Millisecond, maxTime: 2 * time.Minute, stop: stop, req: func(i int) (*http.Request, error) {
				if i%10 == 9 {
					return http.NewRequest(http.MethodGet, p.api+"/v1/users/999999", nil) // a 404 and a miss
				}
				return http.NewRequest(http.MethodGet, p.api+users[i%len(users)], nil)
			}}.run(t)
		}()
	}
	stopped := false
	stopTraffic := func() {
		if !stopped {
			stopped = true
			close(stop)
			<-done
			<-done
		}
	}
	defer stopTraffic()

	client, err := api.NewClient(api.Config{Address: prom.URL})
	if err != nil {
		t.Fatal(err)
	}
	papi := promv1.NewAPI(client)
	// latestScrape is the time of Prometheus's newest sample of both pods.
	latestScrape := func() time.Time {
		v, _, _, err := papi.Query(context.Background(), `min(timestamp(pacer_http_requests_in_flight{namespace="ns"})) and count(pacer_http_requests_in_flight{namespace="ns"}) == 2`, time.Now())
		if err != nil {
			t.Logf("query: %v", err)
			return time.Time{}
		}
		if vec, ok := v.(model.Vector); ok && len(vec) == 1 {
			return time.Unix(0, int64(float64(vec[0].Value)*1e9))
		}
		return time.Time{}
	}
	eventually(t, "Prometheus scrapes both pods", func() bool { return !latestScrape().IsZero() })
	time.Sleep(2 * time.Second) // a few scrapes under load before the window starts

	pods := NewPods(testPodsOptions)
	if _, err := pods.Observe(context.Background(), tg); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	time.Sleep(8 * time.Second)
	fromPods, err := pods.Observe(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	eventually(t, "Prometheus scraped both pods after the window", func() bool { return latestScrape().After(end) })

	src, err := NewPrometheus(PrometheusOptions{URL: prom.URL, ScrapeInterval: time.Second, Timeout: 30 * time.Second, Now: func() time.Time { return end }})
	if err != nil {
		t.Fatal(err)
	}
	tg.Interval = end.Sub(start).Round(time.Second)
	fromProm, err := src.Observe(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	stopTraffic()
	t.Logf("pods:       %+v", fromPods)
	t.Logf("prometheus: %+v", fromProm)

	if !fromPods.Sufficient || !fromProm.Sufficient {
		t.Fatalf("Sufficient: pods %v (%s), prometheus %v (%s)", fromPods.Sufficient, fromPods.Reason, fromProm.Sufficient, fromProm.Reason)
	}
	same := func(what string, got, want any) {
		if got != want {
			t.Errorf("%s: prometheus %v, pods %v", what, got, want)
		}
	}
	same("Pods", fromProm.Pods, fromPods.Pods)
	same("Generation", fromProm.Generation, fromPods.Generation)
	same("WorkerLimit", fromProm.WorkerLimit, fromPods.WorkerLimit)
	same("PoolMaxConns", fromProm.PoolMaxConns, fromPods.PoolMaxConns)
	if !maps.Equal(fromProm.Pools, fromPods.Pools) || len(fromPods.Pools) == 0 {
		t.Errorf("Pools: prometheus %v, pods %v; want the same pods by pool", fromProm.Pools, fromPods.Pools)
	}
	near := func(what string, got, want, frac float64) {
		if !within(got, want, frac) {
			t.Errorf("%s: prometheus %.4g, pods %.4g; want within %.0f%%", what, got, want, frac*100)
		}
	}
	// rate() extrapolates over the range from samples a second apart; the
	// Pods source divides exact deltas; under steady traffic they agree.
	near("RequestRate", fromProm.RequestRate, fromPods.RequestRate, 0.3)
	near("CacheLookupRate", fromProm.CacheLookupRate, fromPods.CacheLookupRate, 0.3)
	// Rate times mean latency (Little's law) on both sides; the mean feels
	// the same tail as p99.
	if p, q := fromProm.InFlight, fromPods.InFlight; p <= 0 || p > 3*q+0.05 || q > 3*p+0.05 {
		t.Errorf("InFlight: prometheus %.3g, pods %.3g; want within a factor of 3", p, q)
	}
	if math.Abs(fromProm.CacheHitRatio-fromPods.CacheHitRatio) > 0.1 {
		t.Errorf("CacheHitRatio: prometheus %.3f, pods %.3f", fromProm.CacheHitRatio, fromPods.CacheHitRatio)
	}
	same("ErrorRate", fromProm.ErrorRate, 0.0)
	same("ShedRate", fromProm.ShedRate, 0.0)
	// Quantiles come from the same buckets over slightly different samples
	// (Prometheus's scrapes are not the Pods source's); p99 rests on a
	// handful of requests, which the race detector and parallel tests slow
	// now and then, so it gets a wider factor.
	for _, q := range []struct {
		name       string
		prom, pods time.Duration
		factor     time.Duration
	}{{"P50", fromProm.P50, fromPods.P50, 2}, {"P95", fromProm.P95, fromPods.P95, 2}, {"P99", fromProm.P99, fromPods.P99, 5}} {
		if q.prom <= 0 || q.prom > q.factor*q.pods+time.Millisecond || q.pods > q.factor*q.prom+time.Millisecond {
			t.Errorf("%s: prometheus %s, pods %s; want within a factor of %d", q.name, q.prom, q.pods, q.factor)
		}
	}
	if fromProm.P50 > fromProm.P95 || fromProm.P95 > fromProm.P99 {
		t.Errorf("prometheus quantiles out of order: %s %s %s", fromProm.P50, fromProm.P95, fromProm.P99)
	}
	if fromProm.CPUCores <= 0 || fromProm.CacheEntries <= 0 {
		t.Errorf("CPUCores=%v CacheEntries=%v, want both > 0", fromProm.CPUCores, fromProm.CacheEntries)
	}
	if got, want := fromProm.End.Sub(fromProm.Start), tg.Interval; got != want {
		t.Errorf("window length %s, want the interval %s", got, want)
	}

	// A generation the pods do not run and a pod Prometheus does not know.
	tg.Generation = 9
	tg.Pods = append(tg.Pods, Pod{Name: "ghost"})
	w, err := src.Observe(context.Background(), tg)
	if err != nil {
		t.Fatal(err)
	}
	want := "1 of 3 pods not observed (ghost: no samples in Prometheus (is it scraped, with namespace and pod labels?)); " +
		"2 of 3 pods still run config generation 3, want 9 (api-a, api-b)"
	if w.Sufficient || w.Reason != want || w.Pods != 2 {
		t.Errorf("Sufficient=%v Pods=%d Reason=%q; want insufficient over 2 pods, %q", w.Sufficient, w.Pods, w.Reason, want)
	}

	// A Prometheus that does not answer is an error, not a window.
	down, err := NewPrometheus(PrometheusOptions{URL: "http://127.0.0.1:1", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Observe(context.Background(), tg); err == nil {
		t.Error("Observe against an unreachable Prometheus: no error")
	}
}

// TestFillWindowCountsThePodsByPool: the Prometheus source reports each
// observed pod by the pool its latest sample shows; a pod without a pool
// sample is not counted (it stays unseen to the tuner's budget).
func TestFillWindowCountsThePodsByPool(t *testing.T) {
	t.Parallel()
	tg := Target{Namespace: "ns", Name: "svc", Generation: 5, Pods: []Pod{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}}}
	r := results{single: map[string]float64{}, perPod: map[string]map[string]float64{
		qGenSamples: {"a": 3, "b": 3, "c": 3, "d": 3},
		qGenMin:     {"a": 5, "b": 5, "c": 5, "d": 5},
		qGenMax:     {"a": 5, "b": 5, "c": 5, "d": 5},
		qGenLast:    {"a": 5, "b": 5, "c": 5, "d": 5},
		qUp:         {"a": 1, "b": 1, "c": 1, "d": 1},
		qPodPool:    {"a": 8, "b": 4, "c": 12},
	}}
	var w tuning.Window
	fillWindow(&w, r, tg)
	if want := map[int32]int32{8: 1, 4: 1, 12: 1}; !maps.Equal(w.Pools, want) || w.Pods != 4 {
		t.Fatalf("Pools %v over %d pods, want %v over 4", w.Pools, w.Pods, want)
	}
}
