package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pacer-dev/pacer/service/limiter"
	"github.com/pacer-dev/pacer/service/telemetry"
)

func TestPanicBecomesJSON500(t *testing.T) {
	s := &server{Deps: Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: telemetry.New(), Settings: NewSettings(Live{})},
		mux: http.NewServeMux(), ids: newRequestIDs()}
	s.mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) { panic("boom") })
	w := httptest.NewRecorder()
	s.serveHTTP(w, httptest.NewRequest("GET", "/", nil))
	if w.Code != 500 || w.Header().Get("X-Request-Id") == "" || w.Header().Get("X-Process-Time") == "" {
		t.Fatalf("status %d, headers %v", w.Code, w.Header())
	}
	if body := w.Body.String(); body != `{"error":{"code":"internal","message":"internal error"}}` {
		t.Fatalf("body %s", body)
	}
}

// TestClientLeavingWhileQueuedIs499: a request whose client disconnects
// while it waits for a worker slot is recorded as 499, not 200.
func TestClientLeavingWhileQueuedIs499(t *testing.T) {
	x := telemetry.New()
	lim := limiter.New(limiter.Limits{MaxInFlight: 1, QueueDepth: 1, QueueTimeout: time.Hour})
	s := &server{Deps: Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: x, Limiter: lim, Settings: NewSettings(Live{})},
		mux: http.NewServeMux(), ids: newRequestIDs()}
	route := newRouteMetrics(x, "GET /queued")
	s.mux.Handle("GET /queued", withRoute(route, s.withWorkerLimit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler ran for a request whose client left")
	}))))

	if err := lim.Acquire(context.Background()); err != nil { // the slot is busy
		t.Fatal(err)
	}
	defer lim.Release()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *httptest.ResponseRecorder)
	go func() {
		w := httptest.NewRecorder()
		s.serveHTTP(w, httptest.NewRequest("GET", "/queued", nil).WithContext(ctx))
		done <- w
	}()
	for lim.Stats().Queued != 1 {
		runtime.Gosched()
	}
	cancel() // the client disconnects
	<-done

	count := func(class string) float64 {
		return testutil.ToFloat64(x.Requests.WithLabelValues("/queued", "GET", class))
	}
	if count("4xx") != 1 || count("2xx") != 0 {
		t.Fatalf("requests by class: 2xx=%v 4xx=%v, want the abandoned request under 4xx (499)", count("2xx"), count("4xx"))
	}
	for _, reason := range []string{"queue_full", "queue_timeout"} {
		if got := testutil.ToFloat64(x.QueueRejections.WithLabelValues(reason)); got != 0 {
			t.Fatalf("rejections{reason=%q} = %v: a client leaving is not a rejection", reason, got)
		}
	}
}
