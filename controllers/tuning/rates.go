package tuning

// The one definition of each request rate the tuner reads from a window,
// all pods together, in requests per second.

// arrived is the demand: every request that reached the pods, refused or
// failed ones included, less those the rate limit refused (429s are policy,
// not capacity).
func arrived(w Window) float64 { return max(w.RequestRate-w.RateLimitedRate, 0) }

// admitted is the requests that took a worker slot: arrived less those the
// worker queue shed.
func admitted(w Window) float64 { return max(arrived(w)-w.ShedRate, 0) }

// completed is the requests answered without a 5xx: the throughput.
func completed(w Window) float64 { return max(arrived(w)-w.ErrorRate, 0) }

// perPod divides a rate among the window's pods.
func perPod(rate float64, w Window) float64 {
	if w.Pods <= 0 {
		return 0
	}
	return rate / float64(w.Pods)
}

// inServiceTime is the mean time a request holds a worker slot, in
// seconds, by Little's law (in flight = rate × time); 0 when unknown.
func inServiceTime(w Window) float64 {
	a := perPod(admitted(w), w)
	if a <= 0 || w.InFlight <= 0 {
		return 0
	}
	return w.InFlight / a
}

// missRatio is the share of requests that go to the database.
func missRatio(w Window) float64 {
	if w.CacheLookupRate <= 0 {
		return 1
	}
	return 1 - min(max(w.CacheHitRatio, 0), 1)
}

// queryTime is how long a request that goes to the database holds a
// connection, in seconds (Little's law over the pool: connections in use =
// acquires per second × hold time); 0 when unknown. It excludes the wait
// to acquire one: a starved pool and a slow database are told apart here.
func queryTime(w Window) float64 {
	acq := perPod(completed(w), w) * missRatio(w)
	if acq <= 0 || w.PoolAcquired <= 0 {
		return 0
	}
	return w.PoolAcquired / acq
}

// queued says whether requests waited for a worker slot in the window, or
// were shed for the lack of one.
func queued(w Window) bool { return w.QueueLength >= 0.5 || w.ShedRate > 0 }

// full says whether inUse of a limit (workers or connections per pod)
// counts as all of it: the limit, not what feeds it, holds requests back.
func full(inUse, limit float64) bool { return inUse >= fullShare*limit }
