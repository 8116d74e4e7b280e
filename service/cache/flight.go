package cache

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
)

// ErrFillPanicked wraps a panic recovered inside a fill: the callers get an
// error (500) instead of the process dying.
type ErrFillPanicked struct {
	Value any
	Stack []byte
}

func (e *ErrFillPanicked) Error() string { return fmt.Sprintf("cache fill panicked: %v", e.Value) }

// flights is singleflight with two differences that x/sync/singleflight
// cannot give: a fill is cancelled when the last caller waiting for it has
// left (so fills never outnumber the requests waiting for them, which hold
// worker slots), and a panic in a fill is returned as an error to its
// callers rather than re-panicked on a goroutine nobody can recover.
type flights struct {
	mu    sync.Mutex
	calls map[int64]*flight
}

type flight struct {
	done    chan struct{}
	entry   Entry
	err     error
	waiters int // guarded by flights.mu
	cancel  context.CancelFunc
}

// do returns the result of the fill in flight for id, or starts fill with
// a context detached from ctx (so one caller leaving fails no other), yet
// cancelled when no caller waits any more.
func (f *flights) do(ctx context.Context, id int64, fill func(context.Context) (Entry, error)) (Entry, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[int64]*flight)
	}
	fl, ok := f.calls[id]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		fl = &flight{done: make(chan struct{}), cancel: cancel}
		f.calls[id] = fl
		go f.run(fctx, id, fl, fill)
	}
	fl.waiters++
	f.mu.Unlock()

	select {
	case <-fl.done:
		return fl.entry, fl.err
	case <-ctx.Done():
		f.mu.Lock()
		fl.waiters--
		if fl.waiters == 0 {
			// Nobody waits: stop the query, and let the next caller start
			// afresh rather than join a cancelled fill.
			fl.cancel()
			f.forgetLocked(id, fl)
		}
		f.mu.Unlock()
		return Entry{}, ctx.Err()
	}
}

func (f *flights) run(ctx context.Context, id int64, fl *flight, fill func(context.Context) (Entry, error)) {
	defer func() {
		if p := recover(); p != nil {
			fl.err = &ErrFillPanicked{Value: p, Stack: debug.Stack()}
		}
		f.mu.Lock()
		f.forgetLocked(id, fl)
		f.mu.Unlock()
		fl.cancel()
		close(fl.done)
	}()
	fl.entry, fl.err = fill(ctx)
}

// forget makes the next caller for id start a new fill; callers of the one
// in flight still get its result.
func (f *flights) forget(id int64) {
	f.mu.Lock()
	f.forgetLocked(id, f.calls[id])
	f.mu.Unlock()
}

func (f *flights) forgetLocked(id int64, fl *flight) {
	if fl != nil && f.calls[id] == fl {
		delete(f.calls, id)
	}
}

// inFlight is the number of fills running, for tests.
func (f *flights) inFlight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}
