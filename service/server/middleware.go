package server

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/pacer-dev/pacer/service/limiter"
	m "github.com/pacer-dev/pacer/service/metrics"
)

// serveHTTP is the outermost layer: request id, process time, request
// deadline, metrics.
func (s *server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	timeout := s.Settings.Load().RequestTimeout
	rec := &recorder{ResponseWriter: w, start: start, status: http.StatusOK, writeGrace: timeout,
		ids: s.ids, id: r.Header.Get(headerRequestID), unheld: s.Metrics.UnheldResponses}
	if !validRequestID(rec.id) {
		rec.id, rec.idNum = "", s.ids.next()
	}
	if rec.conn = connDeadlineOf(r); r.ProtoMajor != 1 {
		rec.conn = nil // an HTTP/2 connection carries concurrent requests
	}
	switch {
	case rec.conn != nil:
		if !rec.conn.arm(start, timeout) {
			// Pipelined behind a request that timed out: the connection's
			// context is cancelled and it closes after this answer.
			writeAPIError(rec, &apiError{status: http.StatusServiceUnavailable, code: codeOverloaded,
				message: "connection closing after a timed-out request; retry", retryAfter: 1})
			s.observe(nil, r.Method, rec.status, time.Since(start))
			return
		}
	case timeout > 0:
		// Served without a tracked HTTP/1 connection (in process, by tests
		// or another server): a timer per request does the same job.
		ctx, cancel := context.WithTimeoutCause(r.Context(), timeout, ErrRequestTimeout)
		defer cancel()
		r = r.WithContext(ctx)
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p) // net/http's own way to abort a response
			}
			rec.dropHeld()
			s.Metrics.Panics.Inc()
			s.Logger.Error("handler panicked", "panic", p, "stack", string(debug.Stack()),
				"request_id", rec.requestID(), "method", r.Method, "path", r.URL.Path)
			if !rec.wroteHeader {
				writeError(rec, http.StatusInternalServerError, codeInternal, "internal error")
			}
		}
		switch {
		case rec.wroteHeader:
		case rec.clientClosed:
			// Nobody is there to read an answer: record 499, write nothing.
			rec.status = StatusClientClosedRequest
			if rec.conn != nil && !rec.conn.disarm() {
				// net/http still writes an empty 200; its connection must close.
				rec.Header()["Connection"] = connectionClose
			}
		default:
			rec.WriteHeader(http.StatusOK)
		}
		s.observe(rec.route, r.Method, rec.status, time.Since(start))
	}()
	s.mux.ServeHTTP(rec, r)
}

// requestID is the id of the request w answers, for logs.
func requestID(w http.ResponseWriter) string {
	if rec, ok := w.(*recorder); ok {
		return rec.requestID()
	}
	return w.Header().Get(headerRequestID)
}

// clientGone reports whether r's client went away (its context ended for
// another reason than the request timeout).
func clientGone(r *http.Request) bool {
	return r.Context().Err() != nil && !timedOut(r.Context())
}

// withRoute tells the outer layer which route matched, for its labels.
func withRoute(route *routeMetrics, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.route = route
		}
		next.ServeHTTP(w, r)
	})
}

// withSchemaGate answers 503 until migrations have been applied.
func (s *server) withSchemaGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Migrated() {
			writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, code: codeStarting,
				message: "database schema not ready yet, retry later", retryAfter: 1})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withRateLimit answers 429 when the client's bucket is empty.
func (s *server) withRateLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.RateLimiter.Enabled() {
			next.ServeHTTP(w, r)
			return
		}
		client := s.Settings.Load().Clients.Client(r)
		if ok, retry := s.RateLimiter.Allow(client); !ok {
			s.Metrics.RateLimited.Inc()
			writeAPIError(w, &apiError{status: http.StatusTooManyRequests, code: codeRateLimited,
				message: "rate limit exceeded", retryAfter: int(math.Ceil(retry.Seconds()))})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cacheHit answers r from the in-process cache and reports true, or
// reports false having written nothing.
type cacheHit func(w http.ResponseWriter, r *http.Request) bool

// withCacheHit serves what hit can answer before the worker limit: a hit
// costs microseconds of CPU and no database, so it takes no slot and never
// waits in the queue behind misses. It is still rate limited and counted in
// the request metrics, like any request.
func withCacheHit(hit cacheHit, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !hit(w, r) {
			next.ServeHTTP(w, r)
		}
	})
}

// withWorkerLimit holds a worker slot for the request, or sheds it with 503.
func (s *server) withWorkerLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Limiter.Acquire(r.Context()); err != nil {
			reason, message := m.ReasonQueueFull, err.Error()
			switch {
			case errors.Is(err, limiter.ErrQueueTimeout):
				reason = m.ReasonQueueTimeout
			case timedOut(r.Context()):
				reason, message = m.ReasonQueueTimeout, "server overloaded: request timed out while queued"
			case r.Context().Err() != nil:
				// The client left while queued; nobody reads an answer.
				markClientClosed(w)
				s.Logger.Debug("client closed request while queued", "status", StatusClientClosedRequest,
					"request_id", requestID(w), "method", r.Method, "path", r.URL.Path)
				return
			}
			s.Metrics.QueueRejections.WithLabelValues(reason).Inc()
			writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, code: codeOverloaded,
				message: message, retryAfter: 1})
			return
		}
		rec, ok := w.(*recorder)
		if !ok {
			defer s.Limiter.Release()
			next.ServeHTTP(w, r)
			return
		}
		// The answer is held while the slot is (held.go), and written once
		// the slot is released: a client slow to read costs no slot.
		released := false
		defer func() {
			if !released { // the handler panicked
				s.Limiter.Release()
			}
		}()
		rec.hold()
		next.ServeHTTP(w, r)
		if size := rec.heldSize(); rec.holding && !s.held.take(size) {
			rec.unhold(m.ReasonBudget) // written from inside the slot
		} else if rec.holding {
			defer s.held.give(size)
		}
		released = true
		s.Limiter.Release()
		rec.flushHeld()
	})
}

// withBodyLimit caps the request body: reading past its size fails with
// 413, and it must arrive within the request timeout of the worker slot
// being taken (and before the request's own deadline: deadlines.go), or
// reading fails with 408. Without the deadline a client
// trickling its body could hold a worker slot for as long as it liked.
func (s *server) withBodyLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			live := s.Settings.Load()
			body := r.Body
			rc := http.NewResponseController(w)
			if err := rc.SetReadDeadline(time.Now().Add(live.RequestTimeout)); err == nil {
				body = &deadlineBody{ReadCloser: body, rc: rc}
				if r.Context().Err() != nil {
					// Timed out while taking the slot: the deadline just set
					// must not undo the sweeper's past one.
					_ = rc.SetReadDeadline(aLongTimeAgo)
				}
			}
			r.Body = http.MaxBytesReader(w, body, live.MaxBodyBytes)
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the connection's read deadline once the body has been
// read to the end: net/http then reads the connection in the background to
// notice a client leaving, and an expired deadline there would cancel a
// request that is merely slow to answer.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
