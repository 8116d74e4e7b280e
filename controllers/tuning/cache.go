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

// cacheRec recommends cache entries per pod from ws[0], C being the size in
// effect. A cache that evicts on more than 10% of lookups and misses on a
// noticeable share of them is too small: double it, unless the last
// growth did not help (hostile says so) or the hit ratio is under 5% (keys
// that barely repeat). A cache that holds less than a quarter of its
// entries and evicts nothing shrinks to twice what it holds: the entries a
// pod holds follow its share of the load, which moves with replicas, so
// only a cache far too big is trimmed.
func (p params) cacheRec(ws []Window, C int32, hostile string) rec {
	w := ws[0]
	hold := func(why string) rec { return rec{to: C, reason: why} }
	if w.CacheLookupRate <= 0 || C <= 0 {
		return hold("")
	}
	evict := w.CacheEvictionRate / w.CacheLookupRate
	switch {
	case evict > cacheEvictionShare && w.CacheHitRatio < 0.98:
		if hostile != "" {
			return hold(hostile)
		}
		if w.CacheHitRatio < cacheHostileHit {
			return hold(fmt.Sprintf("hit ratio %s: keys barely repeat (cache-hostile), a bigger cache would not help", pct(w.CacheHitRatio)))
		}
		to := ceil32(float64(C) * 2)
		return rec{to: to, reason: fmt.Sprintf("hit ratio %s with %s of lookups evicting an entry: %s",
			pct(w.CacheHitRatio), pct(evict), arrow(SettingCache, C, to))}
	case evict < 0.005 && w.CacheEntries < 0.25*float64(C):
		if !p.latencyKnown(w) {
			return hold(lowDemandHold(SettingCache))
		}
		to := max(ceil32(w.CacheEntries*2), 1)
		return rec{to: to, reason: fmt.Sprintf("the cache holds %s of %d entries per pod and evicts almost nothing: %s",
			num(w.CacheEntries), C, arrow(SettingCache, C, to))}
	}
	return hold("")
}

// cacheWaits says why the cache must not change now, or "": it changes
// only when nothing else changes or has just changed and every pod is
// ready, so its effect on the hit ratio can be judged on its own.
func (p params) cacheWaits(in Input, reasons map[string]string) string {
	if p.bounds.CacheMaxEntries == nil {
		return ""
	}
	if len(reasons) > 0 {
		return "cacheMaxEntries waits while other settings change"
	}
	if in.Window.Pods < int(in.Current.Replicas) {
		return "cacheMaxEntries waits for every pod to be ready"
	}
	if u := p.loadOf(in.Window, in.Current.MaxInFlight).podsBusy / float64(in.Current.Replicas); u > p.target {
		// A new config leaves the windows untrusted until it reaches
		// every pod (up to a minute), and busy pods may need more pods
		// sooner than that.
		return fmt.Sprintf("cacheMaxEntries waits while the pods run above the target (%s of %s)", pct(u), pct(p.target))
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
