package cache

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPanickingFillIsAnError: a panic inside a fill reaches its caller as
// ErrFillPanicked instead of killing the process (on x/sync/singleflight's
// DoChan it was re-panicked on a goroutine nobody could recover).
func TestPanickingFillIsAnError(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics()})
	_, err := c.Get(context.Background(), 1, func(context.Context) (Entry, error) { panic("boom") })
	var p *ErrFillPanicked
	if !errors.As(err, &p) || p.Value != "boom" || len(p.Stack) == 0 {
		t.Fatalf("err = %v, want ErrFillPanicked with the value and a stack", err)
	}
	if e, err := c.Get(context.Background(), 1, func(context.Context) (Entry, error) { return entry(2), nil }); err != nil || e.Version != 2 {
		t.Fatalf("next Get = %+v, %v; want a fresh fill", e, err)
	}
}

// TestFillStopsWhenItsCallersLeave: a fill whose every caller gave up is
// cancelled, so fills never outlive the requests (and worker slots) that
// wait for them; a caller arriving later starts a fresh fill rather than
// join the cancelled one.
func TestFillStopsWhenItsCallersLeave(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics(), FillTimeout: time.Hour})
	started, stopped := make(chan struct{}), make(chan error, 1)
	slow := func(ctx context.Context) (Entry, error) {
		close(started)
		<-ctx.Done()
		stopped <- ctx.Err()
		return Entry{}, ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { _, err := c.Get(ctx, 1, slow); got <- err }()
	<-started
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("caller err = %v", err)
	}
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Fatalf("fill context err = %v, want cancelled", err)
	}
	if e, err := c.Get(context.Background(), 1, func(context.Context) (Entry, error) { return entry(3), nil }); err != nil || e.Version != 3 {
		t.Fatalf("later Get = %+v, %v; want a fresh fill", e, err)
	}
	waitFor(t, func() bool { return c.flights.inFlight() == 0 })
}

// TestFillSurvivesOneOfTwoCallersLeaving: the fill is shared; one caller
// leaving must not fail the other.
func TestFillSurvivesOneOfTwoCallersLeaving(t *testing.T) {
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics(), FillTimeout: time.Hour})
	release, started := make(chan struct{}), make(chan struct{})
	load := func(ctx context.Context) (Entry, error) {
		close(started)
		select {
		case <-release:
			return entry(1), nil
		case <-ctx.Done():
			return Entry{}, ctx.Err()
		}
	}
	leaving, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { _, err := c.Get(leaving, 1, load); left <- err }()
	<-started
	stayed := make(chan error, 1)
	go func() { _, err := c.Get(context.Background(), 1, load); stayed <- err }()
	waitFor(t, func() bool {
		c.flights.mu.Lock()
		defer c.flights.mu.Unlock()
		return c.flights.calls[1] != nil && c.flights.calls[1].waiters == 2
	})
	cancel()
	if err := <-left; err == nil {
		t.Fatal("the caller that left got no error")
	}
	close(release)
	if err := <-stayed; err != nil {
		t.Fatalf("remaining caller failed: %v", err)
	}
}
