// Package ratelimit limits each client to a token-bucket rate
// (golang.org/x/time/rate). The bucket table is bounded: the least recently
// seen client is evicted when it is full, and buckets idle long enough to
// have refilled are dropped, so a flood of distinct clients cannot grow
// memory. Settings change live.
package ratelimit

import (
	"container/list"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limits are the live settings. RequestsPerSecond 0 turns limiting off.
type Limits struct {
	RequestsPerSecond float64
	Burst             int
	MaxClients        int
}

// Limiter is safe for concurrent use.
type Limiter struct {
	enabled atomic.Bool // read without the lock on every request
	mu      sync.Mutex
	limits  Limits
	clients map[string]*list.Element
	lru     list.List // of *bucket, most recently seen first
	evicted *evictedSketch
	now     func() time.Time
}

type bucket struct {
	key      string
	limiter  *rate.Limiter
	lastSeen time.Time
}

// New returns a limiter with limits.
func New(limits Limits) *Limiter {
	l := &Limiter{clients: make(map[string]*list.Element), now: time.Now, evicted: newEvictedSketch()}
	l.SetLimits(limits)
	return l
}

// SetLimits applies new limits to every client at once.
func (l *Limiter) SetLimits(limits Limits) {
	if limits.MaxClients < 1 {
		limits.MaxClients = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = limits
	l.enabled.Store(limits.RequestsPerSecond > 0)
	if limits.RequestsPerSecond <= 0 {
		l.clients = make(map[string]*list.Element)
		l.lru.Init()
		l.evicted.reset()
		return
	}
	now := l.now()
	for el := l.lru.Front(); el != nil; el = el.Next() {
		b := el.Value.(*bucket)
		b.limiter.SetLimitAt(now, rate.Limit(limits.RequestsPerSecond))
		b.limiter.SetBurstAt(now, limits.Burst)
	}
	for l.lru.Len() > limits.MaxClients {
		l.evictLocked(l.lru.Back(), now)
	}
}

// Enabled reports whether limiting is on.
func (l *Limiter) Enabled() bool { return l.enabled.Load() }

// Clients is the number of buckets held.
func (l *Limiter) Clients() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}

// Allow takes a token from client's bucket. When it is refused, retryAfter
// is how long until a token is available (at least one second, as
// Retry-After counts whole seconds).
func (l *Limiter) Allow(client string) (ok bool, retryAfter time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.RequestsPerSecond <= 0 {
		return true, 0
	}
	now := l.now()
	b := l.bucketLocked(client, now)
	if b.limiter.AllowN(now, 1) {
		return true, 0
	}
	tokens := b.limiter.TokensAt(now)
	// Time until the bucket holds one token again, in whole seconds, at
	// least one and at most maxRetryAfter (a tiny rate must not overflow
	// the duration and lose the header).
	secs := math.Ceil((1 - tokens) / l.limits.RequestsPerSecond)
	return false, time.Duration(min(max(1, secs), maxRetryAfter.Seconds())) * time.Second
}

// maxRetryAfter caps Retry-After.
const maxRetryAfter = time.Hour

func (l *Limiter) bucketLocked(client string, now time.Time) *bucket {
	if el, ok := l.clients[client]; ok {
		b := el.Value.(*bucket)
		b.lastSeen = now
		l.lru.MoveToFront(el)
		return b
	}
	l.evictIdleLocked(now)
	if l.lru.Len() >= l.limits.MaxClients {
		l.evictLocked(l.lru.Back(), now)
	}
	b := &bucket{
		key:      client,
		limiter:  rate.NewLimiter(rate.Limit(l.limits.RequestsPerSecond), l.limits.Burst),
		lastSeen: now,
	}
	// A client evicted before it refilled starts where it would be now.
	if fullAt := l.evicted.fullAt(client); fullAt.After(now) {
		missing := math.Ceil(fullAt.Sub(now).Seconds() * l.limits.RequestsPerSecond)
		b.limiter.ReserveN(now, int(min(missing, float64(l.limits.Burst))))
	}
	l.clients[client] = l.lru.PushFront(b)
	return b
}

// evictIdleLocked drops buckets from the old end that have been idle long
// enough to be full again: a new bucket for that client would be identical.
func (l *Limiter) evictIdleLocked(now time.Time) {
	refill := time.Duration(float64(l.limits.Burst) / l.limits.RequestsPerSecond * float64(time.Second))
	for el := l.lru.Back(); el != nil; el = l.lru.Back() {
		if now.Sub(el.Value.(*bucket).lastSeen) < refill {
			return
		}
		l.evictLocked(el, now)
	}
}

// evictLocked drops a bucket, remembering when it would have been full if
// it is not full now.
func (l *Limiter) evictLocked(el *list.Element, now time.Time) {
	b := el.Value.(*bucket)
	if missing := float64(l.limits.Burst) - b.limiter.TokensAt(now); missing > 0 {
		l.evicted.record(b.key, now.Add(time.Duration(missing/l.limits.RequestsPerSecond*float64(time.Second))))
	}
	l.lru.Remove(el)
	delete(l.clients, b.key)
}
