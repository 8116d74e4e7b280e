package tuning

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Setting names, as the fields of pacerv1.Settings are spelled in JSON.
const (
	SettingReplicas = "replicas"
	SettingWorkers  = "maxInFlight"
	SettingPool     = "poolMaxConns"
	SettingCache    = "cacheMaxEntries"
)

// RevertPrefix starts the reason of every change that undoes the previous
// decision; a revert is never itself reverted.
const RevertPrefix = "revert: "

// ms formats a duration for a reason: 142ms, 3.5ms, 1.2s.
func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(time.Second).String()
	case d >= time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= 10*time.Millisecond:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	default:
		// A request's CPU on a small pod is tens of microseconds: rounded
		// to 100µs it read "0s".
		return d.Round(time.Microsecond).String()
	}
}

// secs formats seconds (a float) as a duration.
func secs(s float64) string { return ms(time.Duration(s * float64(time.Second))) }

// pct formats a fraction as a percentage.
func pct(f float64) string { return fmt.Sprintf("%.0f%%", f*100) }

// num formats a rate or a count compactly.
func num(f float64) string {
	switch {
	case f >= 100 || f == math.Trunc(f):
		return fmt.Sprintf("%.0f", f)
	case f >= 10:
		return fmt.Sprintf("%.1f", f)
	default:
		return fmt.Sprintf("%.2g", f)
	}
}

// arrow formats "name from → to".
func arrow(name string, from, to int32) string { return fmt.Sprintf("%s %d → %d", name, from, to) }

// joinNotes joins non-empty notes with "; ".
func joinNotes(notes []string) string {
	var out []string
	for _, n := range notes {
		if n != "" {
			out = append(out, n)
		}
	}
	return strings.Join(out, "; ")
}
