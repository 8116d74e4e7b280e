package tuning

import "fmt"

// cacheHostile says, from the newest applied growth of the cache, whether
// growing it did not raise the hit ratio: then the keys do not repeat
// within reach of a bigger cache and growing it again is pointless. It
// returns the note to hold with, or "".
func cacheHostile(in Input, ws []Window) string {
	t, c, ok := lastIncrease(in.History, SettingCache)
	if !ok {
		return ""
	}
	before, after, ok := beforeAfter(ws, t)
	if !ok {
		return ""
	}
	if gain := after.CacheHitRatio - before.CacheHitRatio; gain < cacheMinGain {
		return fmt.Sprintf("the last growth %d → %d moved the hit ratio %s → %s: keys look cache-hostile, not growing further",
			c.From, c.To, pct(before.CacheHitRatio), pct(after.CacheHitRatio))
	}
	return ""
}

// cacheRec proposes the cache size per pod from the latest window. A
// cache that evicts on more than cacheEvictionShare of lookups and still
// misses is too small: double it, unless the last growth did not help or
// the hit ratio says keys barely repeat. When the database binds (the pool
// cannot grow, by its bound or the connection budget), every hit is a
// query the pool no longer carries, so any steady eviction is reason to
// grow. A cache that holds less than cacheIdleShare of its entries and
// evicts nothing shrinks to twice what it holds. It returns the size in
// effect, and why, when nothing changes.
func (p params) cacheRec(in Input, ws []Window, databaseBound bool) (int32, string, string) {
	w, C := ws[0], in.Current.CacheMaxEntries
	if p.bounds.CacheMaxEntries == nil || w.CacheLookupRate <= 0 || C <= 0 {
		return C, "", ""
	}
	evict := w.CacheEvictionRate / w.CacheLookupRate
	grows := evict > cacheEvictionShare || (databaseBound && evict > cacheIdleEvictions)
	switch {
	case grows && w.CacheHitRatio < cacheFullHit:
		if hostile := cacheHostile(in, ws); hostile != "" {
			return C, "", hostile
		}
		if w.CacheHitRatio < cacheHostileHit {
			return C, "", fmt.Sprintf("hit ratio %s: keys barely repeat (cache-hostile), a bigger cache would not help", pct(w.CacheHitRatio))
		}
		to := ceil32(float64(C) * 2)
		why := ""
		if evict <= cacheEvictionShare {
			why = "; the database binds, so every hit counts"
		}
		return to, fmt.Sprintf("hit ratio %s with %s of lookups evicting an entry%s: %s", pct(w.CacheHitRatio), pct(evict), why, arrow(SettingCache, C, to)), ""
	case evict < cacheIdleEvictions && w.CacheEntries < cacheIdleShare*float64(C):
		if !p.latencyKnown(w) {
			return C, "", lowDemandHold(SettingCache)
		}
		if covered, note := p.scaleDownCovered(in, ws); !covered || raisedWithin(in, SettingCache, p.down) {
			return C, "", fmt.Sprintf("cacheMaxEntries waits for the scale-down window (%s)", note)
		}
		to := max(ceil32(w.CacheEntries*2), 1)
		return to, fmt.Sprintf("the cache holds %s of %d entries per pod and evicts almost nothing: %s", num(w.CacheEntries), C, arrow(SettingCache, C, to)), ""
	}
	return C, "", ""
}

// cacheWaits says why the cache must not change now, or "": it changes
// only when nothing else changes or has just changed, every pod is ready
// and the CPU is under its target, so its effect on the hit ratio can be
// judged on its own and its rollout (windows untrusted until it reaches
// every pod) does not blind a busy service.
func (p params) cacheWaits(in Input, m model, databaseBound bool) string {
	if p.bounds.CacheMaxEntries == nil {
		return ""
	}
	if in.Window.Pods < int(in.Current.Replicas) {
		return "cacheMaxEntries waits for every pod to be ready"
	}
	// A busy CPU is no reason to wait when the database binds: no other
	// setting can add capacity, so a rollout's blind windows cost nothing.
	if m.cores > 0 && !databaseBound {
		if u := in.Window.CPUCores / m.cores; u > m.cpuTarget {
			return fmt.Sprintf("cacheMaxEntries waits while the pods run above the CPU target (%s of %s)", pct(u), pct(m.cpuTarget))
		}
	}
	for _, d := range in.History {
		if d.Applied && in.Now.Sub(d.Time.Time) < 2*p.interval {
			return "cacheMaxEntries waits for the last change to settle"
		}
	}
	return ""
}

// lowDemandHold is why a low-demand window does not shrink the pool or the
// cache: what it shows in use is the idle load's, not what the service
// needs when the load returns, and what a shrink would free on the few
// pods an idle service keeps buys nothing. Replicas still fall.
func lowDemandHold(name string) string {
	return fmt.Sprintf("%s holds: a low-demand window (p99 not measured) does not size it", name)
}
