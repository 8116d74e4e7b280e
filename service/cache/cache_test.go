package cache

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func entry(v int64) Entry { return Entry{Version: v, Body: []byte("v" + strconv.FormatInt(v, 10))} }

func constLoader(calls *atomic.Int64, e Entry) Loader {
	return func(context.Context) (Entry, error) {
		calls.Add(1)
		return e, nil
	}
}

func TestHitAfterFill(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics()})
	var calls atomic.Int64
	for range 3 {
		e, err := c.Get(context.Background(), 1, constLoader(&calls, entry(1)))
		if err != nil || e.Version != 1 {
			t.Fatalf("Get = %+v, %v", e, err)
		}
	}
	if calls.Load() != 1 {
		t.Fatalf("loader called %d times, want 1", calls.Load())
	}
	if got := testutil.ToFloat64(c.metrics.LocalHits); got != 2 {
		t.Fatalf("hits = %v, want 2", got)
	}
}

func TestErrorsAreNotCached(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics()})
	notFound := errors.New("not found")
	_, err := c.Get(context.Background(), 1, func(context.Context) (Entry, error) { return Entry{}, notFound })
	if !errors.Is(err, notFound) {
		t.Fatalf("err = %v", err)
	}
	var calls atomic.Int64
	if _, err := c.Get(context.Background(), 1, constLoader(&calls, entry(1))); err != nil || calls.Load() != 1 {
		t.Fatalf("second Get did not load: %v, %d calls", err, calls.Load())
	}
}

func TestSingleflightLoadsOnce(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics()})
	release := make(chan struct{})
	var calls atomic.Int64
	load := func(context.Context) (Entry, error) {
		calls.Add(1)
		<-release
		return entry(1), nil
	}
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), 7, load); err != nil {
				t.Error(err)
			}
		}()
	}
	waitFor(t, func() bool { return calls.Load() == 1 })
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("loader called %d times, want 1", calls.Load())
	}
}

// TestInvalidationBeatsInFlightFill is the read-after-write race: a fill
// that read the old row before a write must not land in the cache after the
// write's invalidation, and a read after the write must not join it.
func TestInvalidationBeatsInFlightFill(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics()})
	loaded := make(chan struct{})
	finish := make(chan struct{})
	oldFill := func(context.Context) (Entry, error) {
		close(loaded) // read the old row...
		<-finish      // ...and is slow to return it
		return entry(1), nil
	}
	done := make(chan Entry)
	go func() {
		e, _ := c.Get(context.Background(), 1, oldFill)
		done <- e
	}()
	<-loaded
	c.Updated(context.Background(), 1, entry(2)) // the write commits

	var calls atomic.Int64
	e, err := c.Get(context.Background(), 1, constLoader(&calls, entry(2)))
	if err != nil || e.Version != 2 {
		t.Fatalf("read after write = %+v, %v; want version 2", e, err)
	}
	close(finish)
	if old := <-done; old.Version != 1 {
		t.Fatalf("old reader got %+v", old)
	}
	e, _ = c.Get(context.Background(), 1, constLoader(&calls, entry(2)))
	if e.Version != 2 {
		t.Fatalf("the late fill overwrote the cache: got version %d", e.Version)
	}
}

func TestBoundAndTTL(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 3, Metrics: NopMetrics()})
	var calls atomic.Int64
	for id := range int64(10) {
		_, _ = c.Get(context.Background(), id, constLoader(&calls, entry(1)))
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d, want 3", c.Len())
	}
	if got := testutil.ToFloat64(c.metrics.Evictions); got != 7 {
		t.Fatalf("evictions = %v, want 7", got)
	}
	c.Configure(time.Nanosecond, 3, 0)
	before := calls.Load()
	_, _ = c.Get(context.Background(), 9, constLoader(&calls, entry(1)))
	time.Sleep(time.Millisecond)
	_, _ = c.Get(context.Background(), 9, constLoader(&calls, entry(1)))
	if calls.Load()-before != 2 {
		t.Fatalf("expired entries served: %d loads, want 2", calls.Load()-before)
	}
	c.Configure(0, 0, 0)
	if c.Len() != 0 {
		t.Fatal("disabling the cache kept entries")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
