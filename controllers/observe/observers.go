// Package observe runs each TunedService's metrics observation on a
// goroutine of its own, off the reconcile workers, and hands the finished
// result back to the controller.
//
// One observer per TunedService observes once per interval, with at most
// one observation in flight: a service whose pods hang is observed again
// only once its previous observation has ended, and each observation ends
// at its own deadline. A finished result waits for the reconciler to take
// it, and the observer calls Done so the reconciler is queued to do so.
//
// Observations run in one of two lanes, each bounded: services whose last
// observation was quick share the main lane; a service whose last
// observation was slow (a hung pod runs to the deadline) is observed in the
// slow lane, so slow services queue behind each other and never in front
// of healthy ones. A slot is given back when the observation ends or its
// deadline passes, whichever is first.
package observe

import (
	"context"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Func makes one observation of the service key. ctx ends at the
// observation's deadline or when the observer stops.
type Func[R any] func(ctx context.Context, key types.NamespacedName) R

// Options configure Observers.
type Options[R any] struct {
	// Observe makes one observation; it runs on the observer's goroutine.
	Observe Func[R]
	// Done is called after each finished observation, from the observer's
	// goroutine; it should queue the key for a reconcile and not block long.
	Done func(types.NamespacedName)
	// Timeout bounds one observation; an observation also ends by half its
	// interval, so it never overlaps the next one's turn. Default 10s.
	Timeout time.Duration
	// MaxInFlight bounds the observations running at once in the main lane;
	// default 32.
	MaxInFlight int
	// MaxSlowInFlight bounds those in the slow lane; default MaxInFlight/4,
	// at least 1.
	MaxSlowInFlight int
	// SlowAfter is how long an observation may take before its service
	// moves to the slow lane; default 1s.
	SlowAfter time.Duration
	// Recover turns a panic in Observe into that observation's value (a
	// failed observation); nil means the zero R. The panic is counted in
	// pacer_observer_panics_total and logged with its stack.
	Recover func(key types.NamespacedName, recovered any) R
}

func (o Options[R]) withDefaults() Options[R] {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 32
	}
	if o.MaxSlowInFlight <= 0 {
		o.MaxSlowInFlight = max(1, o.MaxInFlight/4)
	}
	if o.SlowAfter <= 0 {
		o.SlowAfter = time.Second
	}
	if o.Done == nil {
		o.Done = func(types.NamespacedName) {}
	}
	if o.Recover == nil {
		o.Recover = func(types.NamespacedName, any) (zero R) { return zero }
	}
	return o
}

// Finished is one finished observation.
type Finished[R any] struct {
	Value      R
	Start, End time.Time
}

// Observers keeps one observer per service. Safe for concurrent use.
type Observers[R any] struct {
	o          Options[R]
	fast, slow chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu    sync.Mutex
	byKey map[types.NamespacedName]*observer[R]
	live  map[types.NamespacedName]int // goroutines not yet returned
	// last is the done channel of each key's newest goroutine until it
	// returns: a new observer waits for it, so that even a stop and a
	// start make no second observation in flight.
	last   map[types.NamespacedName]chan struct{}
	closed bool
}

type observer[R any] struct {
	interval time.Duration
	cancel   context.CancelFunc
	done     chan struct{}
	latest   *Finished[R] // not yet taken
}

// New returns Observers with none running.
func New[R any](o Options[R]) *Observers[R] {
	o = o.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Observers[R]{
		o:      o,
		fast:   make(chan struct{}, o.MaxInFlight),
		slow:   make(chan struct{}, o.MaxSlowInFlight),
		ctx:    ctx,
		cancel: cancel,
		byKey:  map[types.NamespacedName]*observer[R]{},
		live:   map[types.NamespacedName]int{},
		last:   map[types.NamespacedName]chan struct{}{},
	}
}

// Ensure makes sure key is observed every interval: it starts an observer,
// or restarts one whose interval changed. A new observer begins once the
// key's previous one, if any, has returned; its first observation starts
// at once.
func (s *Observers[R]) Ensure(key types.NamespacedName, interval time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	prev := s.byKey[key]
	if prev != nil && prev.interval == interval {
		return
	}
	if prev != nil {
		prev.cancel()
	}
	after := s.last[key] // nil when none is left
	ctx, cancel := context.WithCancel(s.ctx)
	ob := &observer[R]{interval: interval, cancel: cancel, done: make(chan struct{})}
	s.byKey[key] = ob
	s.last[key] = ob.done
	s.live[key]++
	s.wg.Add(1)
	go s.run(ctx, key, ob, after)
}

// Stop stops key's observer, if any, and drops its result not yet taken.
// It does not wait: an observation in flight ends when its context does.
func (s *Observers[R]) Stop(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ob := s.byKey[key]; ob != nil {
		ob.cancel()
		delete(s.byKey, key)
	}
}

// Take returns key's latest finished observation, once; false when none
// finished since the last Take. It never waits.
func (s *Observers[R]) Take(key types.NamespacedName) (Finished[R], bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ob := s.byKey[key]
	if ob == nil || ob.latest == nil {
		return Finished[R]{}, false
	}
	f := *ob.latest
	ob.latest = nil
	return f, true
}

// Live is the number of key's observer goroutines that have not returned
// (0 once Stop has taken effect; 2 briefly during a restart).
func (s *Observers[R]) Live(key types.NamespacedName) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[key]
}

// Start runs until ctx ends, then stops every observer and waits for them
// to return (a controller-runtime manager.Runnable).
func (s *Observers[R]) Start(ctx context.Context) error {
	<-ctx.Done()
	s.StopAll()
	return nil
}

// StopAll stops every observer, refuses new ones and waits until all
// have returned.
func (s *Observers[R]) StopAll() {
	s.mu.Lock()
	s.closed = true
	clear(s.byKey)
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

func (s *Observers[R]) run(ctx context.Context, key types.NamespacedName, ob *observer[R], after chan struct{}) {
	defer func() {
		s.mu.Lock()
		if s.live[key]--; s.live[key] == 0 {
			delete(s.live, key)
		}
		if s.last[key] == ob.done {
			delete(s.last, key)
		}
		s.mu.Unlock()
		close(ob.done)
		s.wg.Done()
	}()
	// A panic outside an observation ends this observer only; the next
	// Ensure (the next reconcile pass) starts a new one.
	defer func() {
		if v := recover(); v != nil {
			Recovered(StageObserver, key, v)
			s.mu.Lock()
			if s.byKey[key] == ob {
				delete(s.byKey, key)
			}
			s.mu.Unlock()
		}
	}()
	if after != nil {
		select {
		case <-after:
		case <-ctx.Done():
			return
		}
	}
	timeout := min(s.o.Timeout, ob.interval/2)
	slow := false
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		timer.Reset(time.Until(next))
		select {
		case <-timer.C:
		case <-ctx.Done():
			return
		}
		lane := s.fast
		if slow {
			lane = s.slow
		}
		select {
		case lane <- struct{}{}:
		case <-ctx.Done():
			return
		}
		start := time.Now()
		next = start.Add(ob.interval)
		value := s.observe(ctx, key, timeout, func() { <-lane })
		end := time.Now()
		if ctx.Err() != nil {
			return // stopped: nobody wants the result
		}
		slow = end.Sub(start) >= s.o.SlowAfter
		s.mu.Lock()
		ob.latest = &Finished[R]{Value: value, Start: start, End: end}
		s.mu.Unlock()
		s.o.Done(key)
	}
}

// observe makes one observation with its deadline, and gives the lane slot
// back when it returns or its deadline passes, whichever is first: an
// observation that overruns its deadline holds up only its own service.
// A panic is the value Recover makes of it.
func (s *Observers[R]) observe(ctx context.Context, key types.NamespacedName, timeout time.Duration, release func()) (value R) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var once sync.Once
	give := func() { once.Do(release) }
	stop := context.AfterFunc(ctx, give)
	defer func() {
		stop()
		give()
	}()
	defer func() {
		if v := recover(); v != nil {
			Recovered(StageObserve, key, v)
			value = s.o.Recover(key, v)
		}
	}()
	return s.o.Observe(ctx, key)
}
