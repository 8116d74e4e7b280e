// Package cache is the read-through cache of users: a bounded in-process LRU
// with a TTL, an optional shared Redis layer behind it, and singleflight so
// that a hot missing key is loaded from the database once.
//
// Writes invalidate: a read that starts after a write returns never sees
// the value from before the write. Two mechanisms make that hold while fills
// race with writes:
//   - in process, every invalidation bumps an epoch of the key's stripe and
//     forgets the key's singleflight call, and a fill stores its result only
//     if the epoch it read before loading is unchanged (checked under the
//     same lock as the invalidation);
//   - in Redis, entries carry the row's version and a script refuses to
//     replace a newer version with an older one; a delete leaves a
//     tombstone with a higher version, so a late fill cannot resurrect it.
//     A write updates Redis before it invalidates the local layer, and if
//     it cannot reach Redis this process stops reading from Redis for one
//     TTL, the longest Redis can hold a value older than that write.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pacer-dev/pacer/service/limiter"
)

// Entry is a cached user: its row version and its JSON encoding, so a hit
// is written to the client without encoding anything.
type Entry struct {
	Version int64
	Body    []byte
}

// Loader reads a user from the source of truth.
type Loader func(ctx context.Context) (Entry, error)

// Remote is the shared layer (Redis).
type Remote interface {
	// Get returns the entry for id; found is false on a miss or a tombstone.
	Get(ctx context.Context, id int64) (e Entry, found bool, err error)
	// Set stores e unless a newer version (or tombstone) is stored.
	Set(ctx context.Context, id int64, e Entry, ttl time.Duration) error
	// Tombstone marks id deleted at version, refusing older fills.
	Tombstone(ctx context.Context, id int64, version int64, ttl time.Duration) error
}

// Metrics are the counters the cache updates. Entries is read with Len.
type Metrics struct {
	LocalHits, LocalMisses prometheus.Counter
	RemoteHits             prometheus.Counter
	RemoteMisses           prometheus.Counter
	RemoteErrors           prometheus.Counter
	Evictions              prometheus.Counter
	// FillRejections counts fills refused for want of a fill slot.
	FillRejections prometheus.Counter
}

// NopMetrics returns counters that are not registered anywhere.
func NopMetrics() Metrics {
	c := func() prometheus.Counter { return prometheus.NewCounter(prometheus.CounterOpts{Name: "nop"}) }
	return Metrics{c(), c(), c(), c(), c(), c(), c()}
}

// Options configure a Cache.
type Options struct {
	TTL        time.Duration // 0 turns the cache off
	MaxEntries int           // 0 turns the cache off
	// Remote is the optional shared layer.
	Remote Remote
	// FillTimeout bounds a load shared by several callers; it runs detached
	// from the first caller's context so one caller leaving fails no other.
	FillTimeout time.Duration
	Metrics     Metrics
	// OnRemoteError is told about each failed Remote call (for logging).
	OnRemoteError func(error)
	// Fills bounds the fills reading the database at once, and how long
	// and how many may wait for one; MaxInFlight 0 means no bound.
	Fills limiter.Limits
}

// ErrFillsBusy means a miss found every fill slot taken for longer than the
// fill queue allows: the database is as busy as misses may make it.
var ErrFillsBusy = errors.New("cache fills busy")

const epochStripes = 1024

// remoteBackoff is how long the remote layer is skipped after a failure, so
// a Redis outage costs one failed call per second, not one per request.
const remoteBackoff = time.Second

// Cache is safe for concurrent use.
type Cache struct {
	metrics       Metrics
	remote        Remote
	onRemoteError func(error)
	flights       flights
	fills         *limiter.Limiter
	// on mirrors enabled(), so a read with the cache off takes no lock.
	on atomic.Bool

	mu          sync.Mutex
	ttl         time.Duration
	fillTimeout time.Duration
	local       *lru
	epochs      [epochStripes]uint64
	remoteDown  time.Time // remote skipped until then
	// remoteStaleUntil: no reads from the remote layer until then, since a
	// write could not reach it.
	remoteStaleUntil time.Time
}

// New returns a cache configured by opts.
func New(opts Options) *Cache {
	c := &Cache{
		metrics:       opts.Metrics,
		remote:        opts.Remote,
		onRemoteError: opts.OnRemoteError,
		local:         newLRU(0),
		fills:         limiter.New(fillLimits(opts.Fills)),
	}
	if c.onRemoteError == nil {
		c.onRemoteError = func(error) {}
	}
	c.Configure(opts.TTL, opts.MaxEntries, opts.FillTimeout)
	return c
}

// Configure applies new limits live. Turning the cache off clears it.
func (c *Cache) Configure(ttl time.Duration, maxEntries int, fillTimeout time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if fillTimeout <= 0 {
		fillTimeout = 5 * time.Second
	}
	c.ttl, c.fillTimeout = ttl, fillTimeout
	c.on.Store(ttl > 0 && maxEntries > 0)
	if ttl <= 0 || maxEntries <= 0 {
		c.local.clear()
		c.local.max = 0
		return
	}
	c.metrics.Evictions.Add(float64(c.local.resize(maxEntries)))
}

// LimitFills applies new fill limits live.
func (c *Cache) LimitFills(l limiter.Limits) { c.fills.SetLimits(fillLimits(l)) }

func fillLimits(l limiter.Limits) limiter.Limits {
	if l.MaxInFlight == 0 {
		l.MaxInFlight = math.MaxInt
	}
	return l
}

// FillStats reports the fills running and waiting, and their limits.
func (c *Cache) FillStats() limiter.Stats { return c.fills.Stats() }

// Len is the number of entries held in process.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.local.len()
}

func (c *Cache) enabled() bool { return c.ttl > 0 && c.local.max > 0 }

// On reports, without a lock, whether the cache is on (a TTL above zero).
func (c *Cache) On() bool { return c.on.Load() }

// Cached returns the entry for id if the in-process layer holds it. It
// never loads, waits or counts a miss: the fast path before Get.
func (c *Cache) Cached(id int64) (Entry, bool) {
	if !c.on.Load() {
		return Entry{}, false
	}
	c.mu.Lock()
	if !c.enabled() {
		c.mu.Unlock()
		return Entry{}, false
	}
	e, ok := c.local.get(id, time.Now(), c.ttl)
	c.mu.Unlock()
	if ok {
		c.metrics.LocalHits.Inc()
	}
	return e, ok
}

// Get returns the entry for id from the cache, or loads it with load.
// Errors from load (such as not found) are returned and not cached.
func (c *Cache) Get(ctx context.Context, id int64, load Loader) (Entry, error) {
	if !c.on.Load() {
		return load(ctx)
	}
	c.mu.Lock()
	if !c.enabled() {
		c.mu.Unlock()
		return load(ctx)
	}
	if e, ok := c.local.get(id, time.Now(), c.ttl); ok {
		c.mu.Unlock()
		c.metrics.LocalHits.Inc()
		return e, nil
	}
	epoch := c.epochs[stripe(id)]
	fillTimeout := c.fillTimeout
	c.mu.Unlock()
	c.metrics.LocalMisses.Inc()

	return c.flights.do(ctx, id, func(ctx context.Context) (Entry, error) {
		ctx, cancel := context.WithTimeout(ctx, fillTimeout)
		defer cancel()
		return c.fill(ctx, id, epoch, load)
	})
}

// fill loads id from the remote layer or the loader and stores it, unless
// the key was invalidated since epoch was read.
func (c *Cache) fill(ctx context.Context, id int64, epoch uint64, load Loader) (Entry, error) {
	if c.remoteReadable() {
		e, found, err := c.remote.Get(ctx, id)
		switch {
		case err != nil:
			c.remoteFailed(err)
		case found:
			c.metrics.RemoteHits.Inc()
			c.storeLocal(id, epoch, e)
			return e, nil
		default:
			c.metrics.RemoteMisses.Inc()
		}
	}
	e, err := c.limitedLoad(ctx, load)
	if err != nil {
		return Entry{}, err
	}
	if c.remoteUsable() {
		if err := c.remote.Set(ctx, id, e, c.remoteTTL()); err != nil {
			c.remoteFailed(err)
		}
	}
	c.storeLocal(id, epoch, e)
	return e, nil
}

// limitedLoad runs load within the fill limit: misses of distinct keys
// reach the database a few at a time (one flight per key already merges
// misses of the same key), so they neither take every pooled connection
// from writes nor wait unboundedly for one.
func (c *Cache) limitedLoad(ctx context.Context, load Loader) (Entry, error) {
	if err := c.fills.Acquire(ctx); err != nil {
		if ctx.Err() == nil {
			c.metrics.FillRejections.Inc()
			err = fmt.Errorf("%w: %w", ErrFillsBusy, err)
		}
		return Entry{}, err
	}
	defer c.fills.Release()
	return load(ctx)
}

func (c *Cache) storeLocal(id int64, epoch uint64, e Entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.enabled() || c.epochs[stripe(id)] != epoch {
		return // invalidated while loading: the value may be stale
	}
	c.metrics.Evictions.Add(float64(c.local.put(id, e, time.Now())))
}

// Updated invalidates id after a write that produced e. The remote layer
// gets e first (it keeps the highest version) and the local layer is
// invalidated after: a fill that starts once the local entry is gone then
// finds e or newer in Redis, never the value from before the write.
func (c *Cache) Updated(ctx context.Context, id int64, e Entry) {
	c.writeRemote(func() error { return c.remote.Set(ctx, id, e, c.remoteTTL()) })
	c.invalidateLocal(id)
}

// Deleted invalidates id after the row, last at version, was deleted: a
// tombstone in the remote layer first, then the local layer.
func (c *Cache) Deleted(ctx context.Context, id int64, version int64) {
	c.writeRemote(func() error { return c.remote.Tombstone(ctx, id, version+1, c.remoteTTL()) })
	c.invalidateLocal(id)
}

// writeRemote runs a write-path call to the remote layer. If it cannot
// run or fails, Redis may hold a value older than the write for up to a
// TTL, so this process stops reading from Redis for that long.
func (c *Cache) writeRemote(call func() error) {
	if c.remote == nil {
		return
	}
	if c.remoteUsable() {
		err := call()
		if err == nil {
			return
		}
		c.remoteFailed(err)
	}
	ttl := c.remoteTTL()
	c.mu.Lock()
	c.remoteStaleUntil = time.Now().Add(ttl)
	c.mu.Unlock()
}

func (c *Cache) invalidateLocal(id int64) {
	c.mu.Lock()
	c.epochs[stripe(id)]++
	c.local.remove(id)
	c.mu.Unlock()
	// A read that starts now must not join a fill that began before the write.
	c.flights.forget(id)
}

// remoteTTL is how long remote entries and tombstones live.
func (c *Cache) remoteTTL() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ttl <= 0 {
		return time.Minute // tombstones outlive any in-flight fill
	}
	return c.ttl
}

func (c *Cache) remoteUsable() bool {
	if c.remote == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.enabled() && time.Now().After(c.remoteDown)
}

// remoteReadable is remoteUsable, unless a write could not reach Redis
// within the last TTL (Redis may then hold values older than that write).
func (c *Cache) remoteReadable() bool {
	if !c.remoteUsable() {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().After(c.remoteStaleUntil)
}

func (c *Cache) remoteFailed(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	c.metrics.RemoteErrors.Inc()
	c.onRemoteError(err)
	c.mu.Lock()
	c.remoteDown = time.Now().Add(remoteBackoff)
	c.mu.Unlock()
}

func stripe(id int64) uint64 { return uint64(id) % epochStripes }
