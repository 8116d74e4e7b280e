package app

import (
	"time"

	"github.com/pacer-dev/pacer/service/limiter"
)

func limiterLimits(inFlight, depth int, timeout time.Duration) limiter.Limits {
	return limiter.Limits{MaxInFlight: inFlight, QueueDepth: depth, QueueTimeout: timeout}
}
