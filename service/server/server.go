// Package server is pacer-api's HTTP API: routes, handlers and the
// middleware around them (request ids, metrics, rate limit, worker limit,
// timeouts). NewServer returns a plain http.Handler; listeners and
// lifecycles live in service/app.
package server

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/pacer-dev/pacer/service/cache"
	"github.com/pacer-dev/pacer/service/jobs"
	"github.com/pacer-dev/pacer/service/limiter"
	"github.com/pacer-dev/pacer/service/ratelimit"
	"github.com/pacer-dev/pacer/service/store"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// Live holds the request-level settings a reload can change.
type Live struct {
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	Clients        *ratelimit.ClientIdentifier
}

// Settings is the live settings, swapped atomically on reload.
type Settings struct{ v atomic.Pointer[Live] }

// NewSettings starts with l.
func NewSettings(l Live) *Settings {
	s := &Settings{}
	s.Store(l)
	return s
}

// Load returns the settings in effect.
func (s *Settings) Load() *Live { return s.v.Load() }

// Store replaces the settings.
func (s *Settings) Store(l Live) {
	if l.Clients == nil {
		l.Clients = &ratelimit.ClientIdentifier{}
	}
	s.v.Store(&l)
}

// Deps are what the API needs. All are required.
type Deps struct {
	Logger      *slog.Logger
	Users       *store.Users
	Cache       *cache.Cache
	Limiter     *limiter.Limiter
	RateLimiter *ratelimit.Limiter
	Jobs        *jobs.Queue
	Metrics     *telemetry.Metrics
	Settings    *Settings
	// Migrated reports whether the schema is ready; until then the API
	// answers 503.
	Migrated func() bool
}

type server struct {
	Deps
	mux       *http.ServeMux
	ids       *requestIDs
	outageLog rate.Sometimes
	held      heldBytes // answers written outside the worker limit
}

// NewServer returns the API handler.
func NewServer(deps Deps) http.Handler {
	s := &server{Deps: deps, mux: http.NewServeMux(), ids: newRequestIDs(),
		outageLog: rate.Sometimes{First: 1, Interval: time.Second}}
	s.routes()
	return http.HandlerFunc(s.serveHTTP)
}
