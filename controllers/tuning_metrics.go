package controllers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// The operator's own tuning metrics, served with controller-runtime's on
// the manager's metrics endpoint, so people can plot what the tuner does.
var (
	tuningDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pacer_tuning_decisions_total",
		Help: "Settings changed by the tuner in Auto mode, by setting and direction (up, down).",
	}, []string{"setting", "direction"})
	tuningSetting = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_setting",
		Help: "The value of each tunable setting rendered for a TunedService.",
	}, []string{"namespace", "name", "setting"})
	tuningObservedP99 = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_observed_p99_seconds",
		Help: "The p99 latency of a TunedService's latest metrics window.",
	}, []string{"namespace", "name"})
	tuningObjectiveP99 = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_objective_p99_seconds",
		Help: "The p99 latency objective of a TunedService.",
	}, []string{"namespace", "name"})
)

func init() {
	crmetrics.Registry.MustRegister(tuningDecisions, tuningSetting, tuningObservedP99, tuningObjectiveP99)
}

func countDecision(c pacerv1.Change) {
	dir := "up"
	if c.To < c.From {
		dir = "down"
	}
	tuningDecisions.WithLabelValues(c.Setting, dir).Inc()
}

func setSettingGauges(ts *pacerv1.TunedService, s pacerv1.Settings) {
	for _, t := range tuning.Tunables {
		tuningSetting.WithLabelValues(ts.Namespace, ts.Name, t.Name).Set(float64(t.Get(s)))
	}
	tuningSetting.WithLabelValues(ts.Namespace, ts.Name, "queueDepth").Set(float64(s.QueueDepth))
}

func setObservationGauges(ts *pacerv1.TunedService, w tuning.Window, objective time.Duration) {
	tuningObjectiveP99.WithLabelValues(ts.Namespace, ts.Name).Set(objective.Seconds())
	if w.Sufficient && w.P99 > 0 {
		tuningObservedP99.WithLabelValues(ts.Namespace, ts.Name).Set(w.P99.Seconds())
	}
}

func forgetGauges(key types.NamespacedName) {
	labels := prometheus.Labels{"namespace": key.Namespace, "name": key.Name}
	tuningSetting.DeletePartialMatch(labels)
	tuningObservedP99.DeletePartialMatch(labels)
	tuningObjectiveP99.DeletePartialMatch(labels)
}
