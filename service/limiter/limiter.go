// Package limiter bounds the requests a pod works on at once, with a
// bounded FIFO queue of waiters and a bounded wait (load shedding).
//
// A waiting request costs one small struct and a timer on the request's own
// goroutine; nothing else runs per request, and the queue never grows past
// its depth, so overload is answered with a fast rejection instead of
// unbounded memory or latency.
package limiter

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

var (
	// ErrQueueFull means every slot is busy and the queue is at its depth.
	ErrQueueFull = errors.New("server overloaded: queue full")
	// ErrQueueTimeout means the request waited the whole queue timeout.
	ErrQueueTimeout = errors.New("server overloaded: queue wait exceeded")
)

// Limits are the live settings.
type Limits struct {
	MaxInFlight  int
	QueueDepth   int
	QueueTimeout time.Duration
}

// Stats is a snapshot for metrics.
type Stats struct {
	InFlight int
	Queued   int
	Limits   Limits
}

// Limiter is safe for concurrent use.
type Limiter struct {
	mu       sync.Mutex
	limits   Limits
	inFlight int
	waiters  list.List // of *waiter, oldest first
}

type waiter struct {
	ready   chan struct{} // closed when a slot is handed over
	granted bool          // guarded by Limiter.mu
}

// New returns a limiter with limits.
func New(limits Limits) *Limiter {
	l := &Limiter{}
	l.SetLimits(limits)
	return l
}

// SetLimits applies new limits live. Raising MaxInFlight admits waiters at
// once; lowering it lets running requests finish and admits fewer after.
// Requests already queued beyond a lowered depth keep their place.
func (l *Limiter) SetLimits(limits Limits) {
	if limits.MaxInFlight < 1 {
		limits.MaxInFlight = 1
	}
	if limits.QueueDepth < 0 {
		limits.QueueDepth = 0
	}
	l.mu.Lock()
	l.limits = limits
	l.admitWaitersLocked()
	l.mu.Unlock()
}

// Stats returns the current counts and limits.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{InFlight: l.inFlight, Queued: l.waiters.Len(), Limits: l.limits}
}

// Acquire takes a slot, waiting in the queue if needed. On success the
// caller must call Release once. It fails with ErrQueueFull at once,
// ErrQueueTimeout after the queue timeout, or ctx's error.
func (l *Limiter) Acquire(ctx context.Context) error {
	l.mu.Lock()
	if l.inFlight < l.limits.MaxInFlight && l.waiters.Len() == 0 {
		l.inFlight++
		l.mu.Unlock()
		return nil
	}
	if l.waiters.Len() >= l.limits.QueueDepth || l.limits.QueueTimeout <= 0 {
		l.mu.Unlock()
		return ErrQueueFull
	}
	w := &waiter{ready: make(chan struct{})}
	el := l.waiters.PushBack(w)
	timeout := l.limits.QueueTimeout
	l.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return nil
	case <-timer.C:
		err = ErrQueueTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if w.granted {
		// A slot arrived as we gave up: take it rather than leak it.
		return nil
	}
	l.waiters.Remove(el)
	return err
}

// Release returns a slot, handing it to the oldest waiter if any.
func (l *Limiter) Release() {
	l.mu.Lock()
	l.inFlight--
	l.admitWaitersLocked()
	l.mu.Unlock()
}

func (l *Limiter) admitWaitersLocked() {
	for l.inFlight < l.limits.MaxInFlight && l.waiters.Len() > 0 {
		w := l.waiters.Remove(l.waiters.Front()).(*waiter)
		w.granted = true
		close(w.ready)
		l.inFlight++
	}
}
