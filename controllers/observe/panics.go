package observe

import (
	"fmt"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/log"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Stages of the operator where a recovered panic is counted.
const (
	// StageObserve is one observation: reading a service's metrics.
	StageObserve = "observe"
	// StageObserver is an observer's own loop, outside an observation.
	StageObserver = "observer"
	// StageReconcile is the reconcile pass's handling of an observation.
	StageReconcile = "reconcile"
)

// panics counts recovered panics. A service's metrics are whatever its
// pods (or its Prometheus) answer: a panic reading them must fail that
// service's observation, and show here, never end the process.
var panics = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "pacer_observer_panics_total",
	Help: "Panics recovered while observing a TunedService's metrics, by stage (observe, observer, reconcile).",
}, []string{"stage"})

func init() {
	crmetrics.Registry.MustRegister(panics)
	for _, s := range []string{StageObserve, StageObserver, StageReconcile} {
		panics.WithLabelValues(s) // exported at 0, so an alert can use increase()
	}
}

// Recovered counts and logs a panic recovered at stage for key, with its
// stack; the caller turns it into key's failed observation.
func Recovered(stage string, key types.NamespacedName, v any) {
	panics.WithLabelValues(stage).Inc()
	log.Log.WithName("observe").Error(fmt.Errorf("panic: %v", v), "recovered a panic; the service's observation failed",
		"stage", stage, "tunedservice", key.String(), "stack", string(debug.Stack()))
}
