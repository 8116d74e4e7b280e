package jobs

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestDrainRunsQueuedJobs(t *testing.T) {
	var done atomic.Int64
	q := New(2, 100, Hooks{Done: func(error) { done.Add(1) }})
	for range 50 {
		if err := q.Enqueue(func(context.Context) error { time.Sleep(time.Millisecond); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if done.Load() != 50 {
		t.Fatalf("%d of 50 jobs ran before Drain returned", done.Load())
	}
	if err := q.Enqueue(func(context.Context) error { return nil }); !errors.Is(err, ErrStopped) {
		t.Fatalf("Enqueue after Drain = %v, want ErrStopped", err)
	}
}

func TestFullQueueRefuses(t *testing.T) {
	block := make(chan struct{})
	q := New(1, 1, Hooks{})
	defer func() { close(block); _ = q.Drain(context.Background()) }()
	wait := func(context.Context) error { <-block; return nil }
	_ = q.Enqueue(wait) // taken by the worker
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	_ = q.Enqueue(wait) // fills the queue
	if err := q.Enqueue(wait); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("Enqueue on a full queue = %v, want ErrQueueFull", err)
	}
}

func TestDrainTimeoutCancelsJobs(t *testing.T) {
	q := New(1, 1, Hooks{})
	started := make(chan struct{})
	_ = q.Enqueue(func(ctx context.Context) error { close(started); <-ctx.Done(); return ctx.Err() })
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := q.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain = %v, want the context's error", err)
	}
}
