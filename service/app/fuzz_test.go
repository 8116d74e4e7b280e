package app

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
)

// FuzzHandler throws random requests (method, path, query, a header, body)
// at the whole API handler of a pacer-api running against the real
// PostgreSQL, and asserts: no panic, no 5xx but 503/504 (back-pressure),
// and a JSON error body with a code and a message on every 4xx. make test
// runs it for a bounded time; its seeds run with the other tests.
func FuzzHandler(f *testing.F) {
	for _, s := range []struct{ method, path, query, hname, hval, body string }{
		{"GET", "/v1/users/1", "", "", "", ""},
		{"POST", "/v1/users", "", "Content-Type", "application/json", `{"name":"Ada","email":"ada@example.com"}`},
		{"POST", "/v1/users/batch", "", "", "", `{"users":[{"name":"a","email":"a@b.io"},{}]}`},
		{"POST", "/v1/users/batch", "", "", "", `{"users":[{},{},{}` + strings.Repeat(",{}", 1200) + `]}`},
		{"GET", "/v1/users", "ids=1,2,,x", "X-Forwarded-For", "1.2.3.4, 5.6.7.8", ""},
		{"GET", "/v1/users", "limit=1000&after=-1", "", "", ""},
		{"DELETE", "/v1/users/99999999999999999999", "", "X-Request-Id", "\x01", ""},
		{"POST", "/v1/users/1/welcome", "", "", "", ""},
		{"PUT", "/v1/users", "", "", "", "[]"},
		{"BREW", "/../etc/passwd", "%zz", "Expect", "100-continue", "null"},
	} {
		f.Add(s.method, s.path, s.query, s.hname, s.hval, []byte(s.body))
	}
	handler, stop := fuzzApp(f)
	defer stop()

	f.Fuzz(func(t *testing.T, method, path, query, hname, hval string, body []byte) {
		req, err := http.NewRequest(method, "http://pacer.test"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.URL.RawQuery = query
		req.RemoteAddr = "192.0.2.1:1234"
		if hname != "" {
			req.Header.Set(hname, hval) // invalid names are rejected by real servers; the handler must cope anyway
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		status := w.Code
		switch {
		case status >= 500 && status != http.StatusServiceUnavailable && status != http.StatusGatewayTimeout:
			t.Fatalf("%s %s?%s: %d %s", method, path, query, status, w.Body.Bytes())
		case status >= 400:
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s?%s: %d without a JSON error body: %q", method, path, query, status, w.Body.Bytes())
			}
		}
	})
}

// fuzzApp starts a pacer-api (fresh database, defaults) for a fuzz run and
// returns its API handler.
func fuzzApp(f *testing.F) (http.Handler, func()) {
	dsn := testenv.FreshDatabase(f)
	cfg := testConfig()
	cfg.Log.Level = "error"
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, Options{Config: cfg, Getenv: func(k string) string {
		if k == "DATABASE_URL" {
			return dsn
		}
		return ""
	}, LogOutput: io.Discard})
	if err != nil {
		cancel()
		f.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !a.migrated.Load() {
		if time.Now().After(deadline) {
			cancel()
			f.Fatal("schema not ready within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a.api.Handler, func() {
		cancel()
		_ = a.Wait()
	}
}
