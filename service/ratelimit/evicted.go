package ratelimit

import (
	"hash/maphash"
	"time"
)

// evictedSketch remembers, for clients whose buckets were evicted before
// they had refilled, when they will be full again: a count-min sketch that
// keeps the latest "full at" time per cell instead of a count. Looking a
// client up takes the earliest of its cells, an upper bound of its own
// time, so a returning client never gets back more tokens than it would
// have had: cycling identities to evict a bucket buys nothing. A collision
// can only make a new client's first bucket partly drained, never fuller.
// Memory is fixed (sketchRows × sketchWidth times).
type evictedSketch struct {
	seed  maphash.Seed
	cells [sketchRows][sketchWidth]int64 // unix nanoseconds
}

const (
	sketchRows  = 4
	sketchWidth = 4096
)

func newEvictedSketch() *evictedSketch {
	return &evictedSketch{seed: maphash.MakeSeed()}
}

// indexes derives the client's cell in each row from one 64-bit hash
// (Kirsch–Mitzenmacher double hashing); the seed is random per process, so
// clients cannot choose colliding keys.
func (s *evictedSketch) indexes(key string) [sketchRows]uint32 {
	h := maphash.String(s.seed, key)
	h1, h2 := uint32(h), uint32(h>>32)|1
	var idx [sketchRows]uint32
	for i := range idx {
		idx[i] = (h1 + uint32(i)*h2) % sketchWidth
	}
	return idx
}

// record notes that key's bucket is full again at fullAt.
func (s *evictedSketch) record(key string, fullAt time.Time) {
	t := fullAt.UnixNano()
	for row, i := range s.indexes(key) {
		if s.cells[row][i] < t {
			s.cells[row][i] = t
		}
	}
}

// fullAt is the latest time key's evicted bucket may be full again (the
// zero time if it was never evicted partly drained, or has refilled).
func (s *evictedSketch) fullAt(key string) time.Time {
	least := int64(1<<63 - 1)
	for row, i := range s.indexes(key) {
		least = min(least, s.cells[row][i])
	}
	if least == 0 {
		return time.Time{}
	}
	return time.Unix(0, least)
}

func (s *evictedSketch) reset() { s.cells = [sketchRows][sketchWidth]int64{} }
