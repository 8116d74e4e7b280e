package limiter

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestAcquireTable(t *testing.T) {
	tests := []struct {
		name     string
		limits   Limits
		held     int // slots taken before the call
		queued   int // waiters parked before the call
		wantErr  error
		wantWait bool // the call had to wait and got a slot from a release
	}{
		{name: "free slot", limits: Limits{MaxInFlight: 2, QueueDepth: 1, QueueTimeout: time.Minute}, held: 1},
		{name: "no queue sheds at once", limits: Limits{MaxInFlight: 1, QueueDepth: 0, QueueTimeout: time.Minute}, held: 1, wantErr: ErrQueueFull},
		{name: "full queue sheds at once", limits: Limits{MaxInFlight: 1, QueueDepth: 1, QueueTimeout: time.Minute}, held: 1, queued: 1, wantErr: ErrQueueFull},
		{name: "queue wait exceeded", limits: Limits{MaxInFlight: 1, QueueDepth: 1, QueueTimeout: time.Millisecond}, held: 1, wantErr: ErrQueueTimeout},
		{name: "zero timeout never queues", limits: Limits{MaxInFlight: 1, QueueDepth: 5, QueueTimeout: 0}, held: 1, wantErr: ErrQueueFull},
		{name: "waits for a release", limits: Limits{MaxInFlight: 1, QueueDepth: 1, QueueTimeout: time.Minute}, held: 1, wantWait: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.limits)
			ctx := context.Background()
			for range tt.held {
				if err := l.Acquire(ctx); err != nil {
					t.Fatal(err)
				}
			}
			parkedCtx, cancelParked := context.WithCancel(ctx)
			defer cancelParked()
			for range tt.queued {
				go func() { _ = l.Acquire(parkedCtx) }()
			}
			eventually(t, func() bool { return l.Stats().Queued == tt.queued })

			if tt.wantWait {
				done := make(chan error, 1)
				go func() { done <- l.Acquire(ctx) }()
				eventually(t, func() bool { return l.Stats().Queued == 1 })
				l.Release()
				if err := <-done; err != nil {
					t.Fatalf("Acquire after release: %v", err)
				}
				if got := l.Stats().InFlight; got != tt.held {
					t.Fatalf("in flight = %d, want %d (the slot was handed over)", got, tt.held)
				}
				return
			}
			err := l.Acquire(ctx)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Acquire() = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestCancelledWaiterLeavesQueue(t *testing.T) {
	l := New(Limits{MaxInFlight: 1, QueueDepth: 1, QueueTimeout: time.Hour})
	if err := l.Acquire(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Acquire(ctx) }()
	eventually(t, func() bool { return l.Stats().Queued == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	if s := l.Stats(); s.Queued != 0 || s.InFlight != 1 {
		t.Fatalf("stats = %+v, want 1 in flight and nobody queued", s)
	}
}

func TestRaisingLimitAdmitsWaiters(t *testing.T) {
	l := New(Limits{MaxInFlight: 1, QueueDepth: 10, QueueTimeout: time.Hour})
	_ = l.Acquire(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); _ = l.Acquire(context.Background()) }()
	}
	eventually(t, func() bool { return l.Stats().Queued == 3 })
	l.SetLimits(Limits{MaxInFlight: 4, QueueDepth: 10, QueueTimeout: time.Hour})
	wg.Wait()
	if s := l.Stats(); s.InFlight != 4 || s.Queued != 0 {
		t.Fatalf("stats = %+v, want 4 in flight, 0 queued", s)
	}
}

func TestNeverExceedsLimitUnderContention(t *testing.T) {
	const limit = 3
	l := New(Limits{MaxInFlight: limit, QueueDepth: 1000, QueueTimeout: time.Minute})
	var mu sync.Mutex
	running, peak := 0, 0
	var wg sync.WaitGroup
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := l.Acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			time.Sleep(100 * time.Microsecond)
			mu.Lock()
			running--
			mu.Unlock()
			l.Release()
		}()
	}
	wg.Wait()
	if peak > limit {
		t.Fatalf("peak concurrency %d > limit %d", peak, limit)
	}
	if s := l.Stats(); s.InFlight != 0 || s.Queued != 0 {
		t.Fatalf("leaked slots: %+v", s)
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}
