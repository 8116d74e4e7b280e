package server

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/service/telemetry"
)

// bareServer is the outer layer alone, with routes to be added to its mux.
func bareServer(timeout time.Duration) *server {
	return &server{Deps: Deps{Logger: slog.New(slog.DiscardHandler), Metrics: telemetry.New(),
		Settings: NewSettings(Live{RequestTimeout: timeout})}, mux: http.NewServeMux(), ids: newRequestIDs()}
}

// trackedServer serves h on loopback with request deadlines tracked.
func trackedServer(t *testing.T, h http.Handler) (*httptest.Server, *RequestDeadlines) {
	t.Helper()
	d := NewRequestDeadlines()
	srv := httptest.NewUnstartedServer(h)
	d.Track(srv.Config)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, d
}

// A request past its deadline has its context cancelled with
// ErrRequestTimeout, answers with Connection: close, and the connection's
// next request is served on a new connection with a fresh deadline.
func TestRequestDeadlineCancelsAndCloses(t *testing.T) {
	s := bareServer(50 * time.Millisecond)
	causes := make(chan error, 2)
	s.mux.HandleFunc("GET /wait", func(w http.ResponseWriter, r *http.Request) {
		select { // a query that does not answer in time
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		causes <- context.Cause(r.Context())
		writeError(w, http.StatusGatewayTimeout, codeTimeout, "request timed out")
	})
	s.mux.HandleFunc("GET /quick", func(w http.ResponseWriter, r *http.Request) {
		causes <- r.Context().Err()
	})
	srv, _ := trackedServer(t, http.HandlerFunc(s.serveHTTP))

	res, err := srv.Client().Get(srv.URL + "/wait")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if cause := <-causes; cause != ErrRequestTimeout {
		t.Fatalf("context cause %v, want ErrRequestTimeout", cause)
	}
	if res.StatusCode != http.StatusGatewayTimeout || !res.Close {
		t.Fatalf("status %d, close %v: want 504 and Connection: close", res.StatusCode, res.Close)
	}
	res, err = srv.Client().Get(srv.URL + "/quick")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if err := <-causes; err != nil || res.StatusCode != http.StatusOK || res.Close {
		t.Fatalf("next request: context %v, status %d, close %v", err, res.StatusCode, res.Close)
	}
}

// A request answered before its deadline keeps its connection, however
// long the connection then stays open: the deadline ends with the answer.
func TestRequestDeadlineEndsWithTheAnswer(t *testing.T) {
	s := bareServer(30 * time.Millisecond)
	errs := make(chan error, 1)
	s.mux.HandleFunc("GET /answer-then-wait", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, []byte(`{}`))
		_ = http.NewResponseController(w).Flush()
		time.Sleep(100 * time.Millisecond) // past the deadline, the answer sent
		errs <- r.Context().Err()
	})
	srv, _ := trackedServer(t, http.HandlerFunc(s.serveHTTP))
	res, err := srv.Client().Get(srv.URL + "/answer-then-wait")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if err := <-errs; err != nil || res.StatusCode != http.StatusOK || res.Close || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("context %v, status %d, close %v, body %q: the answer had started, nothing may cut it", err, res.StatusCode, res.Close, body)
	}
}

// The sweeper runs only while a request has a deadline armed: an open
// keep-alive connection with no request costs it nothing (issue 20, idle
// connections; it used to run, and walk every connection, while any was
// open).
func TestRequestDeadlineSweeperStopsWhenIdle(t *testing.T) {
	inHandler, release := make(chan struct{}), make(chan struct{})
	s := bareServer(time.Minute)
	s.mux.HandleFunc("GET /", func(http.ResponseWriter, *http.Request) {
		inHandler <- struct{}{}
		<-release
	})
	srv, d := trackedServer(t, http.HandlerFunc(s.serveHTTP))
	sweeping := func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.sweeping
	}
	done := make(chan error, 1)
	go func() {
		res, err := srv.Client().Get(srv.URL)
		if err == nil {
			res.Body.Close()
		}
		done <- err
	}()
	<-inHandler
	if !sweeping() {
		t.Fatal("no sweeper while a request is in flight")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The keep-alive connection stays open, idle.
	deadline := time.Now().Add(10 * time.Second)
	for sweeping() {
		if time.Now().After(deadline) {
			t.Fatal("the sweeper still runs with no request in flight")
		}
		time.Sleep(sweepInterval)
	}
	d.mu.Lock()
	open := len(d.conns)
	d.mu.Unlock()
	if open != 1 {
		t.Fatalf("%d connections tracked, want the idle keep-alive one", open)
	}
}

// A keep-alive connection that goes idle and is armed again, in any order
// against the sweeps, stays watched: every armed deadline fires.
func TestRequestDeadlineRearmedConnectionIsWatched(t *testing.T) {
	d := NewRequestDeadlines()
	d.sweeping = true // the test sweeps
	ctx := d.open(context.Background(), &benchConn{})
	cd := ctx.Value(connDeadlineKey{}).(*connDeadline)
	var watched, late []*connDeadline
	sweep := func(at time.Time) { watched, late, _ = d.sweepOnce(monotonic(at), watched, late[:0]) }
	start := time.Now()
	for i := range 100 {
		if !cd.arm(start, time.Hour) {
			t.Fatal("arm refused on an idle connection")
		}
		if i%2 == 0 {
			sweep(start) // sees it armed
		}
		cd.disarm()
		if i%3 == 0 {
			sweep(start) // sees it idle: unlists it
		}
	}
	cd.arm(start, time.Millisecond)
	sweep(start.Add(time.Second))
	if context.Cause(ctx) != ErrRequestTimeout {
		t.Fatalf("a deadline armed after idle/armed cycles did not fire: cause %v", context.Cause(ctx))
	}
}
