package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/pacer-dev/pacer/internal/testenv"
)

func newRedis(t *testing.T) *Redis {
	t.Helper()
	opts, err := RedisOptions(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opts)
	t.Cleanup(func() { _ = client.Close() })
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return NewRedis(client, "test:"+hex.EncodeToString(b)+":") // isolated key space
}

func TestRedisKeepsNewestVersion(t *testing.T) {
	r := newRedis(t)
	ctx := context.Background()
	if err := r.Set(ctx, 1, entry(2), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, 1, entry(1), time.Minute); err != nil { // a late, stale fill
		t.Fatal(err)
	}
	e, found, err := r.Get(ctx, 1)
	if err != nil || !found || e.Version != 2 || string(e.Body) != "v2" {
		t.Fatalf("Get = %+v %v %v, want version 2", e, found, err)
	}
	if err := r.Tombstone(ctx, 1, 3, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := r.Set(ctx, 1, entry(2), time.Minute); err != nil { // a fill from before the delete
		t.Fatal(err)
	}
	if _, found, _ := r.Get(ctx, 1); found {
		t.Fatal("a stale fill resurrected a deleted user")
	}
}

func TestSharedLayerServesOtherProcesses(t *testing.T) {
	r := newRedis(t)
	var calls atomic.Int64
	a := New(Options{TTL: time.Minute, MaxEntries: 10, Remote: r, Metrics: NopMetrics()})
	b := New(Options{TTL: time.Minute, MaxEntries: 10, Remote: r, Metrics: NopMetrics()})
	if _, err := a.Get(context.Background(), 5, constLoader(&calls, entry(4))); err != nil {
		t.Fatal(err)
	}
	e, err := b.Get(context.Background(), 5, constLoader(&calls, entry(4)))
	if err != nil || e.Version != 4 || calls.Load() != 1 {
		t.Fatalf("second process: %+v %v, %d loads; want a Redis hit", e, err, calls.Load())
	}
	if got := testutil.ToFloat64(b.metrics.RemoteHits); got != 1 {
		t.Fatalf("redis hits = %v", got)
	}
	// A write through a invalidates b's Redis view: b's next fill sees it.
	a.Updated(context.Background(), 5, entry(5))
	b.Deleted(context.Background(), 5, 5) // and a delete through b
	if _, found, _ := r.Get(context.Background(), 5); found {
		t.Fatal("deleted user still in Redis")
	}
}

func TestRedisDownDegradesGracefully(t *testing.T) {
	// A port nobody listens on: every call fails at once.
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = client.Close() })
	var logged atomic.Int64
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Remote: NewRedis(client, "x:"), Metrics: NopMetrics(),
		OnRemoteError: func(error) { logged.Add(1) }})
	var calls atomic.Int64
	for id := range int64(5) {
		e, err := c.Get(context.Background(), id, constLoader(&calls, entry(1)))
		if err != nil || e.Version != 1 {
			t.Fatalf("Get with Redis down = %+v, %v; want served from the loader", e, err)
		}
	}
	c.Updated(context.Background(), 1, entry(2))
	if got := testutil.ToFloat64(c.metrics.RemoteErrors); got < 1 {
		t.Fatalf("redis errors = %v, want >= 1", got)
	}
	// Backoff: six calls in a row (each would fail) cost about one failure.
	if got := testutil.ToFloat64(c.metrics.RemoteErrors); got > 3 {
		t.Fatalf("redis errors = %v: the layer was not backed off", got)
	}
	if logged.Load() == 0 {
		t.Fatal("Redis errors were not reported")
	}
}

// TestWriteThatMissesRedisStopsRedisReads: a write made while the remote
// layer is failing leaves Redis possibly stale, so later fills must not
// read Redis until a TTL has passed.
func TestWriteThatMissesRedisStopsRedisReads(t *testing.T) {
	r := newRedis(t)
	c := New(Options{TTL: time.Minute, MaxEntries: 10, Remote: r, Metrics: NopMetrics()})
	ctx := context.Background()
	if err := r.Set(ctx, 1, entry(1), time.Minute); err != nil { // Redis holds version 1
		t.Fatal(err)
	}
	c.remoteFailed(errors.New("blip")) // the layer is backed off...
	c.Updated(ctx, 1, entry(2))        // ...so this write cannot reach Redis
	c.mu.Lock()
	c.remoteDown = time.Time{} // Redis is back
	c.mu.Unlock()
	var calls atomic.Int64
	e, err := c.Get(ctx, 1, constLoader(&calls, entry(2)))
	if err != nil || e.Version != 2 || calls.Load() != 1 {
		t.Fatalf("read after write = version %d (%v, %d loads); want 2 from the loader, not Redis's 1", e.Version, err, calls.Load())
	}
}
