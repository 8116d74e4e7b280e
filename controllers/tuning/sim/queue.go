package sim

import "math"

// erlangC is the probability that an arrival waits in an M/M/c queue with
// offered load a (in Erlangs) and c servers, and the rate at which the wait
// of those that wait decays (c·μ − λ, with service time s). When a ≥ c it
// returns 1 and 0: the queue does not settle (the fluid backlog handles it).
func erlangC(c int, a, s float64) (pWait, rate float64) {
	if c <= 0 {
		return 1, 0
	}
	if a <= 0 || s <= 0 {
		return 0, math.Inf(1)
	}
	if a >= float64(c)*0.999 {
		return 1, 0
	}
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	pw := float64(c) * b / (float64(c) - a*(1-b))
	return pw, (float64(c) - a) / s
}

// component is a share of requests whose latency is shift + Exp(mean a) +
// Exp(mean b) (b may be 0).
type component struct {
	weight, shift, a, b float64
}

// cdf is P(latency ≤ x) for the component.
func (c component) cdf(x float64) float64 {
	x -= c.shift
	if x <= 0 {
		return 0
	}
	a, b := c.a, c.b
	if x > 40*(a+b) {
		return 1 // within 1e-17 of it
	}
	switch {
	case a <= 0 && b <= 0:
		return 1
	case b <= 0:
		return 1 - math.Exp(-x/a)
	case a <= 0:
		return 1 - math.Exp(-x/b)
	case math.Abs(a-b) < 1e-9*a:
		return 1 - math.Exp(-x/a)*(1+x/a)
	default:
		return 1 - (a*math.Exp(-x/a)-b*math.Exp(-x/b))/(a-b)
	}
}
