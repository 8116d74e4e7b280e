package server

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pacer-dev/pacer/service/limiter"
	m "github.com/pacer-dev/pacer/service/metrics"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// blockingWriter is a client that does not read: Write blocks until
// unblocked.
type blockingWriter struct {
	*httptest.ResponseRecorder
	writing chan struct{}
	unblock chan struct{}
}

func (w *blockingWriter) Write(b []byte) (int, error) {
	close(w.writing)
	<-w.unblock
	return w.ResponseRecorder.Write(b)
}

// limitedServer serves body behind the worker limit (one slot).
func limitedServer(body []byte) (*server, *limiter.Limiter) {
	lim := limiter.New(limiter.Limits{MaxInFlight: 1})
	s := &server{Deps: Deps{Logger: slog.New(slog.DiscardHandler), Metrics: telemetry.New(), Limiter: lim,
		Settings: NewSettings(Live{RequestTimeout: time.Minute})}, mux: http.NewServeMux(), ids: newRequestIDs()}
	s.mux.Handle("GET /answer", s.withWorkerLimit(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, body)
	})))
	return s, lim
}

// Issue 20, slow readers: the worker slot used to be held while the answer
// was written, so a client that never read kept it. Now the slot is free
// while the write blocks, and the client gets the whole answer once it
// reads.
func TestSlotFreeWhileAnswerIsWritten(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 100<<10)
	s, lim := limitedServer(body)
	w := &blockingWriter{ResponseRecorder: httptest.NewRecorder(), writing: make(chan struct{}), unblock: make(chan struct{})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.serveHTTP(w, httptest.NewRequest("GET", "/answer", nil))
	}()
	<-w.writing
	if got := lim.Stats().InFlight; got != 0 {
		t.Errorf("%d worker slots held while the client does not read; want 0", got)
	}
	close(w.unblock)
	<-done
	if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), body) || w.Header().Get("Content-Length") != "102400" {
		t.Fatalf("status %d, %d bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

// An answer larger than maxHeldAnswer is written from inside its slot and
// counted; so is one that would pass the budget of held bytes.
func TestUnheldAnswersAreCounted(t *testing.T) {
	tests := []struct {
		name   string
		size   int
		budget int64 // already taken
		reason string
	}{
		{"too large", maxHeldAnswer + 1, 0, m.ReasonTooLarge},
		{"over budget", 1 << 10, heldAnswersBudget, m.ReasonBudget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := bytes.Repeat([]byte("y"), tt.size)
			s, lim := limitedServer(body)
			s.held.n.Store(tt.budget)
			w := &blockingWriter{ResponseRecorder: httptest.NewRecorder(), writing: make(chan struct{}), unblock: make(chan struct{})}
			done := make(chan struct{})
			go func() {
				defer close(done)
				s.serveHTTP(w, httptest.NewRequest("GET", "/answer", nil))
			}()
			<-w.writing
			if got := lim.Stats().InFlight; got != 1 {
				t.Errorf("%d worker slots held while writing an unheld answer; want 1", got)
			}
			close(w.unblock)
			<-done
			if w.Body.Len() != tt.size {
				t.Fatalf("wrote %d bytes, want %d", w.Body.Len(), tt.size)
			}
			if got := testutil.ToFloat64(s.Metrics.UnheldResponses.WithLabelValues(tt.reason)); got != 1 {
				t.Fatalf("unheld{reason=%q} = %v, want 1", tt.reason, got)
			}
			if got := s.held.n.Load(); got != tt.budget {
				t.Fatalf("held bytes %d after the answer, want %d", got, tt.budget)
			}
		})
	}
}

// Writes that are not writeJSON's (a status alone, several small writes)
// are held and written in order, and a panic after a held write answers 500.
func TestHeldWritesKeepTheirOrder(t *testing.T) {
	s, _ := limitedServer(nil)
	s.mux.Handle("GET /parts", s.withWorkerLimit(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, "one,")
		_, _ = io.WriteString(w, "two")
	})))
	s.mux.Handle("GET /flushed", s.withWorkerLimit(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "before,")
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("flush: %v", err)
		}
		_, _ = io.WriteString(w, "after")
	})))
	s.mux.Handle("GET /none", s.withWorkerLimit(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	s.mux.Handle("GET /panic", s.withWorkerLimit(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic("boom")
	})))
	for path, want := range map[string]struct {
		status int
		body   string
	}{
		"/parts":   {http.StatusCreated, "one,two"},
		"/flushed": {http.StatusOK, "before,after"},
		"/none":    {http.StatusNoContent, ""},
		"/panic":   {http.StatusInternalServerError, `{"error":{"code":"internal","message":"internal error"}}`},
	} {
		w := httptest.NewRecorder()
		s.serveHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != want.status || w.Body.String() != want.body {
			t.Errorf("%s: %d %q, want %d %q", path, w.Code, w.Body.String(), want.status, want.body)
		}
		if st := s.Limiter.Stats(); st.InFlight != 0 {
			t.Errorf("%s: %d slots still held", path, st.InFlight)
		}
	}
}
