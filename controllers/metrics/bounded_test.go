package metrics

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/pacer-dev/pacer/service/limiter"
	m "github.com/pacer-dev/pacer/service/metrics"
	"github.com/pacer-dev/pacer/service/store"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// gzipped compresses s.
func gzipped(t *testing.T, s io.Reader) []byte {
	t.Helper()
	var buf bytes.Buffer
	// The best level: since Go 1.27 the default stops near 500:1 on a run of
	// one byte, and the bombs below are meant at deflate's ~1000:1.
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(zw, s); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// padded is a valid, empty Prometheus answer padded with n bytes of JSON
// whitespace: small compressed, n bytes once inflated.
func padded(n int64) io.Reader {
	return io.MultiReader(strings.NewReader(`{"status":"success","data":{"resultType":"vector","result":[`),
		io.LimitReader(repeatByte(' '), n), strings.NewReader(`]}}`))
}

type repeatByte byte

func (r repeatByte) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// serveGzip answers every request with body, gzip-encoded, and counts the
// requests.
func serveGzip(t *testing.T, contentType string, body []byte) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Encoding", "gzip")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func loopbackSources(t *testing.T, o SourcesOptions) *Sources {
	t.Helper()
	policy, err := ParseEndpointPolicy([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	o.Endpoints = policy
	o.AllowHTTPCredentials = true // test servers speak http
	return NewSources(o)
}

// A small compressed Prometheus answer that inflates to 32 MiB is cut
// where it passes what the query can return: an error, not 32 MiB read.
func TestPrometheusGzipBombIsCut(t *testing.T) {
	t.Parallel()
	bomb := gzipped(t, padded(32<<20))
	if len(bomb) > 64<<10 {
		t.Fatalf("the bomb is %d bytes compressed; want a small one", len(bomb))
	}
	srv, _ := serveGzip(t, "application/json", bomb)
	err := observeVia(t, loopbackSources(t, SourcesOptions{}), srv.URL, nil)
	if !errors.Is(err, errTooLarge) {
		t.Errorf("err = %v, want an answer too large", err)
	}
}

// An answer with more series than the query can return is refused.
func TestPrometheusTooManySeries(t *testing.T) {
	t.Parallel()
	var results []string
	for i := range 200 {
		results = append(results, fmt.Sprintf(`{"metric":{"pacer_result":"up","pod":"p%d"},"value":[1,"1"]}`, i))
	}
	body := `{"status":"success","data":{"resultType":"vector","result":[` + strings.Join(results, ",") + `]}}`
	_, err := promAnswer(t, body).Observe(context.Background(), target)
	if cause := errors.Unwrap(err); cause == nil || !strings.Contains(cause.Error(), "more than the query can return") {
		t.Errorf("err = %v (cause %v), want too many series", err, cause)
	}
}

// A pod's exposition: a gzip bomb is cut at MaxBodyBytes of inflated
// text, and lines of pacer-api's families past maxSeriesLines, or
// histogram bounds past maxBuckets, are refused rather than parsed.
func TestPodExpositionBounds(t *testing.T) {
	t.Parallel()
	var many strings.Builder
	for i := range maxSeriesLines + 1 {
		fmt.Fprintf(&many, "%s{route=\"/r%d\"} 1\n", m.RequestsTotal, i)
	}
	var buckets strings.Builder
	fmt.Fprintf(&buckets, "# TYPE %s histogram\n", m.RequestDuration)
	for i := range maxBuckets + 1 {
		fmt.Fprintf(&buckets, "%s_bucket{le=\"%d\"} 1\n", m.RequestDuration, i)
	}
	bomb := io.LimitReader(repeatByte('\n'), 64<<20) // empty lines
	for _, c := range []struct {
		name, body, want string
	}{
		{"gzip bomb", string(gzipped(t, bomb)), "larger than"},
		{"too many series", string(gzipped(t, strings.NewReader(many.String()))), "more than 20000 series"},
		{"too many buckets", string(gzipped(t, strings.NewReader(buckets.String()))), "more than 128 histogram buckets"},
		{"a long line", string(gzipped(t, strings.NewReader(m.RequestsTotal+"{route=\""+strings.Repeat("a", maxLineBytes)+"\"} 1\n"))), "a line longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serveGzip(t, "text/plain; version=0.0.4", []byte(c.body))
			p := NewPods(PodsOptions{MaxBodyBytes: 4 << 20})
			host, port := splitHostPort(t, srv.Listener.Addr().String())
			w, err := p.Observe(context.Background(), Target{Namespace: "ns", Name: "svc", Interval: time.Minute,
				Pods: []Pod{{Name: "p", Host: host, Port: port}}})
			if err != nil {
				t.Fatal(err)
			}
			if w.Sufficient || !strings.Contains(w.Reason, c.want) {
				t.Errorf("Reason %q, want it to say %q", w.Reason, c.want)
			}
		})
	}
}

// Lines of families the window does not read never reach the parser: an
// exposition of 100,000 other series reads as the one it holds of ours.
func TestPodExpositionSkipsOtherFamilies(t *testing.T) {
	t.Parallel()
	var text strings.Builder
	text.WriteString("# HELP go_other Other.\n# TYPE go_other counter\n")
	for i := range 100000 {
		fmt.Fprintf(&text, "go_other{i=\"%d\"} 1\n", i)
	}
	fmt.Fprintf(&text, "# TYPE %s gauge\n%s 4\n", m.ConfigGeneration, m.ConfigGeneration)
	s, err := parseSample(strings.NewReader(text.String()), t0)
	if err != nil {
		t.Fatal(err)
	}
	if !s.HasGeneration || s.Generation != 4 {
		t.Errorf("sample %+v, want generation 4", s)
	}
}

// The budget is shared: an answer that needs more than is free fails at
// once, while a first chunk waits its turn; everything comes back.
func TestBudget(t *testing.T) {
	t.Parallel()
	b := NewBudget(4 * budgetChunk)
	a1, err := b.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := a1.cover(3 * budgetChunk); err != nil {
		t.Fatalf("a1 within the budget: %v", err)
	}
	a2, err := b.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	refusals := testutil.ToFloat64(budgetRefusals)
	if err := a2.cover(2 * budgetChunk); !errors.Is(err, ErrBudget) {
		t.Errorf("a2 past the budget: err = %v, want ErrBudget", err)
	}
	if got := testutil.ToFloat64(budgetRefusals) - refusals; got < 1 {
		t.Errorf("pacer_metrics_budget_refusals_total rose by %v, want at least 1", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.open(ctx); err == nil {
		t.Error("a third answer opened with the budget spent")
	}
	a1.close()
	a2.close()
	if err := a2.cover(budgetChunk * 2); !errors.Is(err, ErrBudget) {
		t.Error("a closed account took budget")
	}
	a3, err := b.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := a3.cover(4 * budgetChunk); err != nil {
		t.Errorf("the whole budget after the others closed: %v", err)
	}
	a3.close()
}

// Many pods' answers at once, together past the budget, cost no more than
// the budget: the scrapes that do not fit fail with ErrBudget.
func TestBudgetAcrossScrapes(t *testing.T) {
	t.Parallel()
	var text strings.Builder
	fmt.Fprintf(&text, "# TYPE %s gauge\n%s 4\n", m.ConfigGeneration, m.ConfigGeneration)
	comment := "# " + strings.Repeat("a", 1021) + "\n" // read, not parsed
	text.WriteString(strings.Repeat(comment, 8*budgetChunk/len(comment)))
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, text.String()[:text.Len()-1])
		w.(http.Flusher).Flush()
		<-release // hold every answer open, its bytes in flight
		_, _ = io.WriteString(w, "\n")
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	host, port := splitHostPort(t, srv.Listener.Addr().String())
	var pods []Pod
	for i := range 4 {
		pods = append(pods, Pod{Name: fmt.Sprint("p", i), Host: host, Port: port})
	}
	p := NewPods(PodsOptions{Budget: NewBudget(20 * budgetChunk), Timeout: 2 * time.Second})
	w, err := p.Observe(context.Background(), Target{Namespace: "ns", Name: "svc", Interval: time.Minute, Pods: pods})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Reason, "budget") {
		t.Errorf("Reason %q: want the scrapes past the budget refused", w.Reason)
	}
}

func splitHostPort(t *testing.T, addr string) (string, int32) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return host, int32(n)
}

// The filter keeps every line reduce reads: pacer-api's own registry, every
// family set, reduces the same with and without it.
func TestFilterKeepsWhatReduceReads(t *testing.T) {
	t.Parallel()
	x := telemetry.New()
	x.ConfigGen.Set(3)
	x.Requests.WithLabelValues("/v1/users", http.MethodGet, "5xx").Add(10)
	x.RequestDuration.WithLabelValues("/v1/users", http.MethodGet, "5xx").Observe(0.004)
	x.QueueRejections.WithLabelValues(m.ReasonQueueFull).Add(2)
	x.RateLimited.Add(3)
	x.Cache.LocalHits.Add(4)
	x.Cache.LocalMisses.Add(5)
	x.Cache.Evictions.Add(6)
	if err := x.RegisterSources(telemetry.Sources{
		Limiter: func() limiter.Stats {
			return limiter.Stats{InFlight: 2, Queued: 1, Limits: limiter.Limits{MaxInFlight: 8}}
		},
		CacheEntries:   func() int { return 12 },
		CacheFills:     func() limiter.Stats { return limiter.Stats{} },
		RateLimitUsers: func() int { return 0 },
		JobsPending:    func() int64 { return 0 },
		JobsOldestAge:  func() time.Duration { return 0 },
		Pool: func() store.Stats {
			return store.Stats{AcquiredConns: 1, MaxConns: 10, AcquireCount: 7, EmptyAcquireCount: 1, AcquireDuration: time.Second}
		},
		PoolSwaps: func() int64 { return 0 },
	}); err != nil {
		t.Fatal(err)
	}
	families, err := x.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	byName := map[string]*dto.MetricFamily{}
	for _, f := range families {
		byName[f.GetName()] = f
		if _, err := expfmt.MetricFamilyToText(&text, f); err != nil {
			t.Fatal(err)
		}
	}
	want, err := reduce(byName, t0)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSample(&text, t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("filtered exposition reduces differently (-unfiltered +filtered):\n%s", diff)
	}
	for name, v := range map[string]float64{"Errors": got.Errors, "Shed": got.Shed, "RateLimited": got.RateLimited,
		"CacheEvictions": got.CacheEvictions, "PoolEmpty": got.PoolEmpty, "QueueLength": got.QueueLength,
		"WorkerLimit": got.WorkerLimit, "CacheEntries": got.CacheEntries, "PoolAcquired": got.PoolAcquired, "StartTime": got.StartTime} {
		if v == 0 {
			t.Errorf("%s reads 0: the exposition does not exercise it", name)
		}
	}
}
