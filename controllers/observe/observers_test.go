package observe

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// No assertion here is about time: waits are bounded only so a broken
// observer fails the test instead of hanging it.
const giveUp = 30 * time.Second

var (
	hung    = types.NamespacedName{Namespace: "ns", Name: "hung"}
	healthy = types.NamespacedName{Namespace: "ns", Name: "healthy"}
)

// counter counts finished observations per key and lets a test wait for them.
type counter struct {
	mu sync.Mutex
	n  map[types.NamespacedName]int
	ch chan struct{}
}

func newCounter() *counter {
	return &counter{n: map[types.NamespacedName]int{}, ch: make(chan struct{}, 1)}
}

func (c *counter) done(key types.NamespacedName) {
	c.mu.Lock()
	c.n[key]++
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *counter) get(key types.NamespacedName) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[key]
}

func (c *counter) waitFor(t *testing.T, key types.NamespacedName, n int) {
	t.Helper()
	deadline := time.After(giveUp)
	for c.get(key) < n {
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("%s: %d observations finished, waited for %d", key.Name, c.get(key), n)
		}
	}
}

// A service whose observation never returns is not observed again while
// it is outstanding, and costs the only slot no longer than its deadline:
// a healthy service keeps being observed.
func TestHungServiceCostsOnlyItself(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var hungCalls atomic.Int32
	c := newCounter()
	obs := New(Options[string]{
		MaxInFlight: 1, MaxSlowInFlight: 1,
		Done: c.done,
		Observe: func(ctx context.Context, key types.NamespacedName) string {
			if key == hung {
				hungCalls.Add(1)
				<-release // ignores its deadline, as a stuck call might
			}
			return key.Name
		},
	})
	defer obs.StopAll()
	defer close(release)

	obs.Ensure(hung, 10*time.Millisecond)
	for hungCalls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	obs.Ensure(healthy, 10*time.Millisecond)
	c.waitFor(t, healthy, 5)
	if n := hungCalls.Load(); n != 1 {
		t.Errorf("the hung service was observed %d times while its first observation was outstanding", n)
	}
	if _, ok := obs.Take(hung); ok {
		t.Error("the hung service has a finished observation")
	}
	f, ok := obs.Take(healthy)
	if !ok || f.Value != "healthy" || f.End.Before(f.Start) {
		t.Errorf("Take(healthy) = %+v, %v", f, ok)
	}
}

// A service whose last observation was slow waits in the slow lane: while
// it holds that lane's slot up to its deadline, a healthy service still
// gets the main lane's only slot.
func TestSlowServiceWaitsInTheSlowLane(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	entered := make(chan struct{})
	var outstanding atomic.Bool
	c := newCounter()
	obs := New(Options[string]{
		MaxInFlight: 1, MaxSlowInFlight: 1, SlowAfter: 300 * time.Millisecond,
		Done: c.done,
		Observe: func(ctx context.Context, key types.NamespacedName) string {
			if key != hung {
				return ""
			}
			if calls.Add(1) == 1 {
				time.Sleep(400 * time.Millisecond) // slow: next time, the slow lane
				return ""
			}
			outstanding.Store(true)
			select {
			case entered <- struct{}{}:
			default:
			}
			<-ctx.Done() // hangs until its deadline
			outstanding.Store(false)
			return ""
		},
	})
	defer obs.StopAll()

	obs.Ensure(hung, 4*time.Second) // deadline 2s
	c.waitFor(t, hung, 1)
	select {
	case <-entered:
	case <-time.After(giveUp):
		t.Fatal("the slow service was not observed a second time")
	}
	obs.Ensure(healthy, time.Millisecond)
	c.waitFor(t, healthy, 3)
	if !outstanding.Load() {
		t.Error("the healthy service was observed only after the slow one's deadline: both shared the main lane")
	}
}

// Stop ends the observer: its goroutine returns and an observation in
// flight sees its context canceled; StopAll waits for every goroutine.
func TestStopEndsTheObserver(t *testing.T) {
	t.Parallel()
	inFlight := make(chan struct{}, 1)
	canceled := make(chan struct{}, 1)
	obs := New(Options[string]{
		Observe: func(ctx context.Context, key types.NamespacedName) string {
			if key == hung {
				inFlight <- struct{}{}
				<-ctx.Done()
				canceled <- struct{}{}
			}
			return ""
		},
	})
	obs.Ensure(hung, time.Hour)
	obs.Ensure(healthy, time.Hour)
	<-inFlight
	if obs.Live(hung) != 1 || obs.Live(healthy) != 1 {
		t.Fatalf("Live = %d, %d; want one goroutine each", obs.Live(hung), obs.Live(healthy))
	}
	obs.Stop(hung)
	select {
	case <-canceled:
	case <-time.After(giveUp):
		t.Fatal("the observation in flight was not canceled")
	}
	for obs.Live(hung) != 0 {
		time.Sleep(time.Millisecond)
	}

	// A changed interval restarts the observer: still one goroutine after.
	obs.Ensure(healthy, 2*time.Hour)
	for obs.Live(healthy) != 1 {
		time.Sleep(time.Millisecond)
	}

	obs.StopAll()
	if obs.Live(healthy) != 0 {
		t.Errorf("StopAll returned with %d goroutines live", obs.Live(healthy))
	}
	obs.Ensure(healthy, time.Hour)
	if obs.Live(healthy) != 0 {
		t.Error("an observer started after StopAll")
	}
}

// Done is called for each finished observation and Take hands each over once.
func TestTakeHandsOverOnce(t *testing.T) {
	t.Parallel()
	c := newCounter()
	obs := New(Options[int]{
		Done:    c.done,
		Observe: func(context.Context, types.NamespacedName) int { return 7 },
	})
	defer obs.StopAll()
	obs.Ensure(healthy, time.Hour)
	c.waitFor(t, healthy, 1)
	if f, ok := obs.Take(healthy); !ok || f.Value != 7 {
		t.Fatalf("Take = %+v, %v", f, ok)
	}
	if _, ok := obs.Take(healthy); ok {
		t.Error("the same observation was taken twice")
	}
	obs.Stop(healthy)
	if _, ok := obs.Take(healthy); ok {
		t.Error("a stopped observer handed over an observation")
	}
}

// A service stopped and started again while its observation overruns
// gets no second observation in flight: the new observer waits.
func TestRestartWaitsForTheOutstandingObservation(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	var calls, inFlight, most atomic.Int32
	c := newCounter()
	obs := New(Options[string]{
		Done: c.done,
		Observe: func(ctx context.Context, key types.NamespacedName) string {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			if n > most.Load() {
				most.Store(n)
			}
			if calls.Add(1) == 1 {
				<-release // ignores its cancellation, as a stuck call might
			}
			return ""
		},
	})
	defer obs.StopAll()
	defer unblock()

	obs.Ensure(hung, time.Hour)
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	obs.Stop(hung)
	obs.Ensure(hung, time.Hour)
	if obs.Live(hung) != 2 {
		t.Fatalf("Live = %d, want the stopped observer and the new one", obs.Live(hung))
	}
	// Room for a new observer that does not wait to make its call (the
	// check is that it did not, not how fast anything ran).
	time.Sleep(200 * time.Millisecond)
	if n := calls.Load(); n != 1 {
		t.Fatalf("the new observer observed while the old observation was outstanding (%d calls)", n)
	}
	unblock()
	c.waitFor(t, hung, 1)
	if most.Load() != 1 {
		t.Errorf("%d observations of one service in flight at once", most.Load())
	}
}
