package config

import (
	"strings"
	"testing"
)

// TestRateLimitLowerBound: a positive rate below MinRequestsPerSecond is
// refused (issue 11, row 10); 0 (off) and the bound itself are accepted.
func TestRateLimitLowerBound(t *testing.T) {
	for _, tt := range []struct {
		rps    float64
		wantOK bool
	}{{0, true}, {MinRequestsPerSecond, true}, {1e-10, false}, {0.009, false}, {-1, false}} {
		c := Default()
		c.RateLimit.RequestsPerSecond, c.RateLimit.Burst = tt.rps, 1
		err := c.Validate()
		if (err == nil) != tt.wantOK || (err != nil && !strings.Contains(err.Error(), "rateLimit.requestsPerSecond")) {
			t.Errorf("requestsPerSecond %g: err = %v, want ok=%v", tt.rps, err, tt.wantOK)
		}
	}
}
