package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// adminHandler serves /metrics, /healthz, /readyz and, when enabled,
// /debug/pprof. It never shares the API port.
func (a *App) adminHandler(enablePprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.Registry, promhttp.HandlerOpts{
		Registry: a.metrics.Registry, // counts its own scrape errors
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", a.readyz)
	if enablePprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// readyz is true when the database answers, the schema is ready and the
// request pool has held its minimum connections once (opening them if
// needed), and false from the moment shutdown starts. The ping uses the
// health pool's own connection: a pod whose request pool is saturated by
// slow queries is busy, not unready.
//
// The admin port is unauthenticated: an answer says what is wrong in
// generic words, and the database's error (host, user, database name) goes
// to the log only.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	notReady := func(reason string, err error) {
		if err != nil {
			a.readyLog.Do(func() { a.log.Warn("not ready: "+reason, "err", err) })
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(reason + "\n"))
	}
	switch {
	case a.shuttingDown.Load():
		notReady("shutting down", nil)
		return
	case !a.migrated.Load():
		notReady("database schema not ready", nil)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := a.health.Ping(ctx); err != nil {
		notReady("database unreachable", err)
		return
	}
	// Ready means ready for load: the request pool holds the connections it
	// is configured to start with, rather than dialling them under the
	// first burst (and failing it with 503 if the database refuses them).
	// Checked until it first holds: afterwards pgxpool redials on demand,
	// and a pool short for a moment (a reload's new pool while the old one
	// drains, at the database's connection limit) must not take every pod
	// out of rotation at once.
	if !a.poolWarmed.Load() {
		if w := a.warmPool(ctx); w.have < w.want {
			notReady(fmt.Sprintf("database pool warming: %d of %d connections open", w.have, w.want), w.err)
			return
		}
	}
	_, _ = w.Write([]byte("ok\n"))
}

// readyTimeout bounds one readiness check's database work.
const readyTimeout = time.Second

type warmResult struct {
	have, want int32
	err        error
}

// warmPool opens the request pool's minimum connections. Concurrent checks
// share one warm-up: each would otherwise hold (and dial) connections of
// its own, up to the pool's maximum.
func (a *App) warmPool(ctx context.Context) warmResult {
	v, _, _ := a.warmup.Do("warm", func() (any, error) {
		have, want, err := a.pools.Warm(ctx)
		if have >= want {
			a.poolWarmed.Store(true)
		}
		return warmResult{have: have, want: want, err: err}, nil
	})
	return v.(warmResult)
}
