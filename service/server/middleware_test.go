package server

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pacer-dev/pacer/service/telemetry"
)

func TestPanicBecomesJSON500(t *testing.T) {
	s := &server{Deps: Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: telemetry.New()},
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
