package jobs

import "time"

// Retry is the backoff of failed attempts: Base after the first, doubling
// each time up to Max, and no attempt after MaxAttempts.
type Retry struct {
	MaxAttempts int           // default 10
	Base        time.Duration // default 1s
	Max         time.Duration // default 5m
}

func (r *Retry) defaults() {
	if r.MaxAttempts <= 0 {
		r.MaxAttempts = 10
	}
	if r.Base <= 0 {
		r.Base = time.Second
	}
	if r.Max <= 0 {
		r.Max = 5 * time.Minute
	}
}

// After says, after failed attempt number attempt (1 for the first),
// whether to try again and how long to wait first.
func (r Retry) After(attempt int) (time.Duration, bool) {
	if attempt >= r.MaxAttempts {
		return 0, false
	}
	d := r.Base
	for i := 1; i < attempt && d < r.Max; i++ {
		d *= 2
	}
	return min(d, r.Max), true
}
