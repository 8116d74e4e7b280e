package tuning

import (
	"strings"
	"testing"
	"time"
)

// Reasons show durations to two or three figures at every scale: a
// request's CPU on a 200m pod (tens of microseconds) read "0s" live.
func TestReasonDurations(t *testing.T) {
	for d, want := range map[time.Duration]string{
		87 * time.Microsecond:   "87µs",
		3210 * time.Microsecond: "3.2ms",
		142 * time.Millisecond:  "142ms",
		1234 * time.Millisecond: "1.2s",
		75 * time.Second:        "1m15s",
	} {
		if got := ms(d); got != want {
			t.Errorf("ms(%v) = %q, want %q", d, got, want)
		}
	}
	m := model{latest: 900, stable: 900, cpu: 87e-6, base: 0.13, cores: 0.2, coresFrom: "the CPU limit"}
	if got := m.describe(); !strings.Contains(got, "87µs CPU per request") {
		t.Errorf("describe() = %q, want the CPU per request in microseconds", got)
	}
}

// A fixed CPU share the fit puts at rounding error (proportional costs
// fit a base of 1e-16 cores) is not shown as one: it read "plus 2.2e-16
// cores a pod uses at any load".
func TestReasonLeavesOutANegligibleFixedCPU(t *testing.T) {
	m := model{latest: 900, stable: 900, cpu: 3.7e-3, base: 2.2e-16, cores: 2, coresFrom: "the CPU limit"}
	if got := m.describe(); strings.Contains(got, "at any load") {
		t.Errorf("describe() = %q, want no fixed CPU share", got)
	}
	m.base = 0.13
	if got := m.describe(); !strings.Contains(got, "plus 0.13 cores a pod uses at any load") {
		t.Errorf("describe() = %q, want the fixed CPU share", got)
	}
}
