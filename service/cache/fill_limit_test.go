package cache

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pacer-dev/pacer/service/limiter"
)

// Misses of distinct keys load at most Fills.MaxInFlight at once; more wait
// in the fill queue, and past its depth a miss gets ErrFillsBusy, counted.
func TestFillLimit(t *testing.T) {
	ctx := context.Background()
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Metrics: NopMetrics(),
		Fills: limiter.Limits{MaxInFlight: 2, QueueDepth: 1, QueueTimeout: time.Minute}})
	var running, peak atomic.Int64
	release := make(chan struct{})
	load := func(context.Context) (Entry, error) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		running.Add(-1)
		return entry(1), nil
	}
	var wg sync.WaitGroup
	for id := int64(1); id <= 3; id++ {
		wg.Go(func() {
			if _, err := c.Get(ctx, id, load); err != nil {
				t.Errorf("user %d: %v", id, err)
			}
		})
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if st := c.FillStats(); st.InFlight == 2 && st.Queued == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fills never reached 2 running and 1 waiting: %+v", c.FillStats())
		}
	}
	if _, err := c.Get(ctx, 4, load); !errors.Is(err, ErrFillsBusy) {
		t.Fatalf("a fourth distinct miss with the fill queue full: %v, want ErrFillsBusy", err)
	}
	if n := testutil.ToFloat64(c.metrics.FillRejections); n != 1 {
		t.Fatalf("fill rejections = %v, want 1", n)
	}
	close(release)
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Fatalf("at most %d loads ran at once, want 2", p)
	}
}
