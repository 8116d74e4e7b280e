package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Request deadlines without a timer per request.
//
// A context.WithTimeout per request adds a runtime timer and removes it
// again a few hundred microseconds later, and puts two more contexts between
// the request and the database: measured under callgrind, about a tenth of
// an uncached read's instructions (docs/service.md, "Benchmarks"). Instead,
// each connection gets one cancellable context when it is accepted
// (http.Server.ConnContext; net/http derives every request's context from
// it), a request arms its deadline on the connection with an atomic store,
// and one goroutine sweeps the connections with an armed deadline every
// sweepInterval, cancelling the context of any whose request is past its
// deadline. The handler and the database see the cancellation as they saw
// the timeout's; a request is cut off at most sweepInterval late.
//
// The sweeper's cost follows the connections serving a request, not the
// open ones: arming a deadline puts its connection on the sweeper's watch
// list (unless it is on it already: a busy keep-alive connection stays on
// it), and a sweep drops the connections it finds idle. Idle keep-alive
// connections cost nothing, and the sweeper stops when no request is in
// flight.
//
// A connection whose context was cancelled cannot serve another request
// (net/http would give it a cancelled context), so its answer carries
// "Connection: close". The deadline covers a request until its answer
// starts; from then on the write deadline (recorder.go) bounds it. Only
// HTTP/1 requests use it (one request at a time per connection); others,
// and requests served without a tracked connection, get a timer.

// ErrRequestTimeout is the cause of a request context cancelled at the
// request timeout, to tell it from a client that went away.
var ErrRequestTimeout = errors.New("request timed out")

// sweepInterval is how late past its deadline a request may be cancelled.
const sweepInterval = 10 * time.Millisecond

// RequestDeadlines enforces the request timeout of the requests served by
// the http.Servers it tracks. The zero value is not usable: see
// NewRequestDeadlines.
type RequestDeadlines struct {
	mu    sync.Mutex
	conns map[net.Conn]*connDeadline
	// armed are the connections put on the watch list since the last sweep.
	armed    []*connDeadline
	sweeping bool // a sweeper goroutine runs (it stops when nothing is armed)
}

// NewRequestDeadlines returns an empty tracker.
func NewRequestDeadlines() *RequestDeadlines {
	return &RequestDeadlines{conns: make(map[net.Conn]*connDeadline)}
}

// Track makes srv's connections carry request deadlines. It wraps any
// ConnContext and ConnState hooks srv already has.
func (d *RequestDeadlines) Track(srv *http.Server) {
	prevContext, prevState := srv.ConnContext, srv.ConnState
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prevContext != nil {
			ctx = prevContext(ctx, c)
		}
		return d.open(ctx, c)
	}
	srv.ConnState = func(c net.Conn, state http.ConnState) {
		switch state {
		case http.StateClosed:
			d.close(c, true)
		case http.StateHijacked:
			d.close(c, false) // its requests' contexts are the hijacker's now
		}
		if prevState != nil {
			prevState(c, state)
		}
	}
}

// connDeadline is one connection's request deadline.
type connDeadline struct {
	conn   net.Conn
	cancel context.CancelCauseFunc
	// deadline is when the current request times out (monotonic
	// nanoseconds, see monotonic), idle when no request is armed, or
	// expired once the sweeper cancelled the connection's context.
	deadline atomic.Int64
	// watched is set while the connection is on the sweeper's watch list.
	watched atomic.Bool
	d       *RequestDeadlines
}

const (
	idle    int64 = 0
	expired int64 = -1
)

type connDeadlineKey struct{}

func (d *RequestDeadlines) open(ctx context.Context, c net.Conn) context.Context {
	ctx, cancel := context.WithCancelCause(ctx)
	cd := &connDeadline{conn: c, cancel: cancel, d: d}
	d.mu.Lock()
	d.conns[c] = cd
	d.mu.Unlock()
	return context.WithValue(ctx, connDeadlineKey{}, cd)
}

// close stops tracking c, cancelling its context if cancel is set.
func (d *RequestDeadlines) close(c net.Conn, cancel bool) {
	d.mu.Lock()
	cd := d.conns[c]
	delete(d.conns, c)
	d.mu.Unlock()
	if cd != nil && cancel {
		cd.cancel(context.Canceled)
	}
}

// watch puts cd on the sweeper's watch list, starting the sweeper if it
// is not running.
func (d *RequestDeadlines) watch(cd *connDeadline) {
	d.mu.Lock()
	d.armed = append(d.armed, cd)
	if !d.sweeping {
		d.sweeping = true
		go d.sweep()
	}
	d.mu.Unlock()
}

// sweep cancels the requests past their deadline, every sweepInterval,
// until no connection has a deadline armed.
func (d *RequestDeadlines) sweep() {
	ticker := time.NewTicker(sweepInterval)
	defer ticker.Stop()
	var watched, late []*connDeadline
	for range ticker.C {
		var more bool
		if watched, late, more = d.sweepOnce(monotonic(time.Now()), watched, late[:0]); !more {
			return
		}
	}
}

// sweepOnce cancels the watched requests past their deadline at now, and
// returns the connections still to watch. It reports false, the sweeper
// stopped, when there are none.
func (d *RequestDeadlines) sweepOnce(now int64, watched, late []*connDeadline) (_, _ []*connDeadline, more bool) {
	d.mu.Lock()
	watched = append(watched, d.armed...)
	clear(d.armed)
	d.armed = d.armed[:0]
	if len(watched) == 0 {
		d.sweeping = false
		d.mu.Unlock()
		return watched, late, false
	}
	d.mu.Unlock()
	kept := watched[:0]
	for _, cd := range watched {
		switch dl := cd.deadline.Load(); {
		case dl > idle && dl <= now && cd.deadline.CompareAndSwap(dl, expired):
			late = append(late, cd) // expired for good: never armed again
		case dl > idle:
			kept = append(kept, cd)
		case dl == idle:
			// Off the list, unless a request armed it meanwhile and found
			// it still listed (then this sweep keeps it).
			cd.watched.Store(false)
			if cd.deadline.Load() > idle && cd.watched.CompareAndSwap(false, true) {
				kept = append(kept, cd)
			}
		}
	}
	clear(watched[len(kept):]) // keep no closed connection reachable
	for _, cd := range late {
		cd.cancel(ErrRequestTimeout)
		// A handler blocked reading a trickled body wakes up too.
		_ = cd.conn.SetReadDeadline(aLongTimeAgo)
	}
	clear(late)
	return kept, late, true
}

var aLongTimeAgo = time.Unix(1, 0)

// clockBase makes deadlines monotonic: a step of the wall clock neither
// cancels every request nor lets them run on.
var clockBase = time.Now()

func monotonic(t time.Time) int64 { return int64(t.Sub(clockBase)) }

// connDeadlineOf returns the deadline of the connection r came on, or nil
// when r was not served by a tracked http.Server.
func connDeadlineOf(r *http.Request) *connDeadline {
	cd, _ := r.Context().Value(connDeadlineKey{}).(*connDeadline)
	return cd
}

// arm starts the request's deadline and makes sure the sweeper watches
// it. It reports false if the connection already expired (a request
// pipelined behind one that timed out), whose context is cancelled.
func (cd *connDeadline) arm(start time.Time, timeout time.Duration) bool {
	if !cd.deadline.CompareAndSwap(idle, monotonic(start)+int64(timeout)) {
		return false
	}
	// Set after the deadline: a sweep that unlists cd clears watched before
	// reading the deadline, so one of the two always lists it.
	if cd.watched.CompareAndSwap(false, true) {
		cd.d.watch(cd)
	}
	return true
}

// disarm ends the request's deadline; it reports false if the sweeper
// expired it first, when the connection must close after this answer.
func (cd *connDeadline) disarm() bool {
	for {
		dl := cd.deadline.Load()
		if dl == expired {
			return false
		}
		if dl == idle || cd.deadline.CompareAndSwap(dl, idle) {
			return true
		}
	}
}

// timedOut reports whether ctx ended at the request timeout (rather than
// because the client went away).
func timedOut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), ErrRequestTimeout)
}
