package observe

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
)

// A panic in one service's observation is that observation's value (from
// Recover), counted in pacer_observer_panics_total, and the observer goes
// on observing: never a crash of the process.
func TestPanicIsAFailedObservation(t *testing.T) {
	t.Parallel()
	before := testutil.ToFloat64(panics.WithLabelValues(StageObserve))
	var calls atomic.Int32
	c := newCounter()
	obs := New(Options[string]{
		Done: c.done,
		Observe: func(_ context.Context, key types.NamespacedName) string {
			if calls.Add(1) == 1 {
				panic("a nil sample") // as reading one did
			}
			return "ok"
		},
		Recover: func(key types.NamespacedName, v any) string { return fmt.Sprintf("%s panicked", key.Name) },
	})
	defer obs.StopAll()
	obs.Ensure(healthy, 10*time.Millisecond)
	c.waitFor(t, healthy, 1)
	if f, ok := obs.Take(healthy); !ok || f.Value != "healthy panicked" {
		t.Errorf("first observation = %+v, %v; want the recovered value", f, ok)
	}
	c.waitFor(t, healthy, 2)
	if f, ok := obs.Take(healthy); !ok || f.Value != "ok" {
		t.Errorf("next observation = %+v, %v; want the observer to go on", f, ok)
	}
	if got := testutil.ToFloat64(panics.WithLabelValues(StageObserve)) - before; got < 1 {
		t.Errorf("pacer_observer_panics_total{stage=observe} rose by %v, want at least 1", got)
	}
}

// A panic outside the observation (here in Done) ends that observer only:
// it is counted, the goroutine is accounted for, and Ensure starts a new one.
func TestPanicInTheObserverLoopRestarts(t *testing.T) {
	t.Parallel()
	before := testutil.ToFloat64(panics.WithLabelValues(StageObserver))
	var dones atomic.Int32
	c := newCounter()
	obs := New(Options[string]{
		Observe: func(context.Context, types.NamespacedName) string { return "ok" },
		Done: func(key types.NamespacedName) {
			if dones.Add(1) == 1 {
				panic("a broken callback")
			}
			c.done(key)
		},
	})
	defer obs.StopAll()
	obs.Ensure(healthy, 10*time.Millisecond)
	deadline := time.Now().Add(giveUp)
	for dones.Load() == 0 || obs.Live(healthy) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the observer that panicked did not return")
		}
		time.Sleep(time.Millisecond)
	}
	obs.Ensure(healthy, 10*time.Millisecond)
	c.waitFor(t, healthy, 1)
	if got := testutil.ToFloat64(panics.WithLabelValues(StageObserver)) - before; got != 1 {
		t.Errorf("pacer_observer_panics_total{stage=observer} rose by %v, want 1", got)
	}
}
