package tuning

import (
	"fmt"
	"math"
	"time"
)

// A pool more than poolSlack times what it needs shrinks to poolRoom
// times that: square-root staffing already leaves room for bursts.
const (
	poolSlack = 1.5
	poolRoom  = 1.25
	// poolMinCut: a shrink must leave at most this share of the pool.
	poolMinCut = 0.8
)

// poolWaitLimit is the mean acquire wait above which the pool counts as
// too small: 2% of the objective, at least 1ms.
func (p params) poolWaitLimit() time.Duration {
	return max(time.Millisecond, p.objective/50)
}

// poolNeed is the pool size for a mean of used connections in use, by
// the square-root staffing rule (used + 2√used, plus one): enough that few
// acquires wait.
func poolNeed(used float64) int32 {
	return ceil32(used + 2*math.Sqrt(used) + 1)
}

// poolRec recommends the pool size per pod from ws[0]: P is the pool size
// the pods ran with, W the workers per pod (a request holds at most one
// connection, so more connections than workers are never needed).
//
// Requests that wait to acquire a connection while most of the pool is in
// use mean the pool is too small: grow it to what the square-root staffing
// rule asks for the connections in use (at least +25%). A pool more than
// twice that size shrinks to twice it (after the scale-down window), which
// frees connection budget for more pods and still leaves room for slower
// queries.
func (p params) poolRec(ws []Window, P, W int32) rec {
	w := ws[0]
	hold := func(why string) rec { return rec{to: P, reason: why} }
	if P <= 0 {
		return hold("")
	}
	used, wait := w.PoolAcquired, w.PoolAcquireWait
	need := poolNeed(used)
	limit := p.poolWaitLimit()
	switch {
	case wait > limit && used >= 0.5*float64(P):
		to := max(need, ceil32(float64(P)*1.25))
		if W > 0 && to > W {
			to = W
		}
		if to <= P {
			return hold(fmt.Sprintf("acquire wait %s but the pool already has one connection per worker (%d)", ms(wait), W))
		}
		return rec{to: to, reason: fmt.Sprintf("acquire wait %s > %s with %s of %d connections in use per pod: %s (%s in use + 2√ headroom = %d)",
			ms(wait), ms(limit), num(used), P, arrow(SettingPool, P, to), num(used), need)}
	case wait <= limit/2 && float64(P) > poolSlack*float64(need):
		if !p.latencyKnown(w) {
			return hold(lowDemandHold(SettingPool))
		}
		to := ceil32(poolRoom * float64(need))
		if float64(to) > poolMinCut*float64(P) {
			// A connection or two is not worth a config rollout (the
			// windows are untrusted until it reaches every pod), nor the
			// reversal when the load wants it back.
			return hold(fmt.Sprintf("poolMaxConns %d is within %s of the %d that %s in use needs with room: too small a cut to roll out", P, pct(1-poolMinCut), to, num(used)))
		}
		return rec{to: to, reason: fmt.Sprintf("only %s of %d connections in use per pod with acquire wait %s: %s (%g× the %d that %s in use + 2√ headroom needs)",
			num(used), P, ms(wait), arrow(SettingPool, P, to), poolRoom, need, num(used))}
	}
	return hold("")
}
