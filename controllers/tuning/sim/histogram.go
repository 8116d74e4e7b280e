package sim

import (
	"math"
	"math/rand/v2"

	svcmetrics "github.com/pacer-dev/pacer/service/metrics"
)

// buckets are the upper bounds of pacer-api's latency histogram: the
// simulated pods report latency in the same buckets the real ones do, so
// the tuner reads a p99 with the same interpolation error.
var buckets = svcmetrics.RequestDurationBuckets

// cdf is the share of the mixture's requests with latency ≤ x.
func cdf(cs []component, x float64) float64 {
	var total, f float64
	for _, c := range cs {
		if c.weight > 0 {
			total += c.weight
			f += c.weight * c.cdf(x)
		}
	}
	if total <= 0 {
		return 0
	}
	return f / total
}

// sampleHistogram bins n requests drawn from the mixture into the buckets
// (the last count is the +Inf bucket) and returns the cumulative counts,
// as a scrape of pacer_http_request_duration_seconds_bucket would show
// them over a window. With few requests the tail buckets are noisy, as
// they are in a real window.
func sampleHistogram(cs []component, n int, rng *rand.Rand) []float64 {
	cum := make([]float64, len(buckets)+1)
	left, mass, prev := n, 1.0, 0.0
	acc := 0
	for i := range cum {
		f := 1.0
		if i < len(buckets) {
			f = cdf(cs, buckets[i])
		}
		p := math.Max(0, f-prev)
		prev = math.Max(prev, f)
		k := left
		if i < len(buckets) && mass > 1e-12 {
			k = binomial(left, math.Min(1, p/mass), rng)
		}
		mass -= p
		left -= k
		acc += k
		cum[i] = float64(acc)
	}
	return cum
}

// histogramQuantile is Prometheus's histogram_quantile over cumulative
// bucket counts (the last one the +Inf bucket): linear interpolation
// inside the bucket that holds the rank; the highest finite bound when
// the rank falls in +Inf. ok is false without observations.
func histogramQuantile(q float64, cum []float64) (v float64, ok bool) {
	total := cum[len(cum)-1]
	if total <= 0 {
		return 0, false
	}
	rank := q * total
	for i, c := range cum {
		if c < rank {
			continue
		}
		if i == len(buckets) {
			return buckets[len(buckets)-1], true
		}
		lower, below := 0.0, 0.0
		if i > 0 {
			lower, below = buckets[i-1], cum[i-1]
		}
		if c == below {
			return buckets[i], true
		}
		return lower + (buckets[i]-lower)*(rank-below)/(c-below), true
	}
	return buckets[len(buckets)-1], true
}

// binomial draws from Binomial(n, p): a Poisson for rare events, a normal
// approximation otherwise.
func binomial(n int, p float64, rng *rand.Rand) int {
	switch {
	case n <= 0 || p <= 0:
		return 0
	case p >= 1:
		return n
	}
	mean := float64(n) * p
	switch {
	case mean < 20:
		return min(poisson(mean, rng), n)
	case float64(n)-mean < 20:
		return n - min(poisson(float64(n)-mean, rng), n)
	}
	k := math.Round(mean + math.Sqrt(mean*(1-p))*rng.NormFloat64())
	return int(math.Min(math.Max(k, 0), float64(n)))
}

// poisson draws from Poisson(mean) by inversion (mean < 20 here).
func poisson(mean float64, rng *rand.Rand) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
