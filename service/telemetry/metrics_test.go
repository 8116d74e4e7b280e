package telemetry

import (
	"slices"
	"testing"

	m "github.com/pacer-dev/pacer/service/metrics"
)

// TestQueueRejectionReasons: every reason exposed from the start is one the
// service counts; a series that can never move would suggest shedding that
// does not happen.
func TestQueueRejectionReasons(t *testing.T) {
	families, err := New().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, f := range families {
		if f.GetName() != m.QueueRejectionsTotal {
			continue
		}
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == m.LabelReason {
					reasons = append(reasons, l.GetValue())
				}
			}
		}
	}
	slices.Sort(reasons)
	if want := []string{m.ReasonQueueFull, m.ReasonQueueTimeout}; !slices.Equal(reasons, want) {
		t.Fatalf("%s reasons = %v, want %v (the ones the worker limit counts)", m.QueueRejectionsTotal, reasons, want)
	}
}
