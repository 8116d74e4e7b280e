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
