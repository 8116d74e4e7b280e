package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// A panic while the tuning step handles an observation is that service's
// failed observation: the step returns no error, the Tuned condition says
// the observation failed, the panic is counted, and the process lives.
func TestTuningStepPanicIsAFailedObservation(t *testing.T) {
	t.Parallel()
	before := panicsCounted(t, "reconcile")
	s := newScope(&pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "svc"}})
	r := &TunedServiceReconciler{}
	step := func() error {
		defer r.recoverObservation(s)
		panic("a hostile window") // as a bug handling one would
	}
	if err := step(); err != nil {
		t.Fatal(err)
	}
	if s.tuned == nil || s.tuned.Reason != "ObservationFailed" || s.tuned.Message != errObservationPanicked {
		t.Errorf("Tuned = %+v, want ObservationFailed", s.tuned)
	}
	if got := panicsCounted(t, "reconcile") - before; got != 1 {
		t.Errorf("pacer_observer_panics_total{stage=reconcile} rose by %v, want 1", got)
	}
	if o := observationPanicked(client.ObjectKey{}, "x"); o.window != nil || o.noWindow.Reason != "ObservationFailed" {
		t.Errorf("observationPanicked = %+v, want a failed observation", o)
	}
}

// panicsCounted reads pacer_observer_panics_total{stage} from the
// manager's registry, where the operator serves it.
func panicsCounted(t *testing.T, stage string) float64 {
	t.Helper()
	families, err := crmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "pacer_observer_panics_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == stage {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("pacer_observer_panics_total{stage=%q} is not registered", stage)
	return 0
}
