package telemetry

import (
	"strings"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/service/limiter"
	"github.com/pacer-dev/pacer/service/store"
)

// A Sources with a nil func is refused at registration, naming the field,
// instead of panicking at every scrape (the operator benchmark's fake pod
// left CacheFills nil and answered every scrape with a panic).
func TestRegisterSourcesRefusesNil(t *testing.T) {
	full := Sources{
		Limiter:        func() limiter.Stats { return limiter.Stats{} },
		CacheEntries:   func() int { return 0 },
		CacheFills:     func() limiter.Stats { return limiter.Stats{} },
		RateLimitUsers: func() int { return 0 },
		JobsPending:    func() int64 { return 0 },
		JobsOldestAge:  func() time.Duration { return 0 },
		Pool:           func() store.Stats { return store.Stats{} },
		PoolSwaps:      func() int64 { return 0 },
	}
	if err := New().RegisterSources(full); err != nil {
		t.Fatalf("every source set: %v", err)
	}
	missing := full
	missing.CacheFills = nil
	x := New()
	err := x.RegisterSources(missing)
	if err == nil || !strings.Contains(err.Error(), "CacheFills") {
		t.Fatalf("CacheFills nil: err = %v, want it named", err)
	}
	if _, err := x.Registry.Gather(); err != nil {
		t.Errorf("a refused Sources left the registry unscrapable: %v", err)
	}
}
