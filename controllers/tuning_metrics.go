package controllers

import (
	"cmp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// The operator's own metrics about each TunedService, served with
// controller-runtime's on the manager's metrics endpoint, for the alert
// rules (config/prometheus) and the dashboard (config/grafana). Every series
// carries namespace and name and is deleted with its TunedService, so their
// number is bounded by the number of TunedServices.
var (
	tuningDecisions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "pacer_tuning_decisions_total",
		Help: "Settings changed by the tuner in Auto mode, by setting, direction (up, down) and source (Tuner, Revert, Budget, Spec).",
	}, []string{"namespace", "name", "setting", "direction", "source"})
	tuningSetting = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_setting",
		Help: "The value of each tunable setting rendered for a TunedService.",
	}, []string{"namespace", "name", "setting"})
	tuningObservedP99 = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_observed_p99_seconds",
		Help: "The p99 latency of a TunedService's latest sufficient metrics window; absent while there is none.",
	}, []string{"namespace", "name"})
	tuningObjectiveP99 = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_objective_p99_seconds",
		Help: "The p99 latency objective of a TunedService.",
	}, []string{"namespace", "name"})
	connectionBudget = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_connection_budget",
		Help: "spec.database.maxTotalConnections of a TunedService; absent when it has no budget.",
	}, []string{"namespace", "name"})
	connectionsWorstCase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tuning_connections_worst_case",
		Help: "The database connections a TunedService's pods may hold at once: pods (desired, surging or terminating) × (poolMaxConns + the health pool).",
	}, []string{"namespace", "name"})
	renderedGeneration = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tunedservice_config_generation",
		Help: "The config generation rendered into a TunedService's ConfigMap; each pacer-api pod reports the one it runs as pacer_config_generation.",
	}, []string{"namespace", "name"})
	serviceCondition = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_tunedservice_condition",
		Help: "1 for each status condition of a TunedService, with its status and reason (one series per condition type).",
	}, []string{"namespace", "name", "type", "status", "reason"})
)

// TuningCollectors are the collectors above, for tests that check the
// dashboard and the alert rules name only metrics that exist.
var TuningCollectors = []prometheus.Collector{
	tuningDecisions, tuningSetting, tuningObservedP99, tuningObjectiveP99,
	connectionBudget, connectionsWorstCase, renderedGeneration, serviceCondition,
}

func init() {
	crmetrics.Registry.MustRegister(TuningCollectors...)
}

// countDecision counts one applied change. A change without a source was
// made by a tuner that predates the field: the tuner's own.
func countDecision(ts *pacerv1.TunedService, c pacerv1.Change) {
	dir := "up"
	if c.To < c.From {
		dir = "down"
	}
	source := cmp.Or(c.Source, pacerv1.ChangeByTuner)
	tuningDecisions.WithLabelValues(ts.Namespace, ts.Name, c.Setting, dir, string(source)).Inc()
}

func setSettingGauges(ts *pacerv1.TunedService, s pacerv1.Settings) {
	for _, t := range tuning.Tunables {
		tuningSetting.WithLabelValues(ts.Namespace, ts.Name, t.Name).Set(float64(t.Get(s)))
	}
	tuningSetting.WithLabelValues(ts.Namespace, ts.Name, "queueDepth").Set(float64(s.QueueDepth))
}

// setConnectionGauges reports the connection budget and what the pods may
// hold against it. Until every pod runs the settings rendered now, a
// Deployment can have more pods than replicas (surging, terminating), each
// with its pool and health pool.
func setConnectionGauges(ts *pacerv1.TunedService, s pacerv1.Settings, d *appsv1.Deployment) {
	pods := s.Replicas
	if d != nil {
		pods = max(pods, d.Status.Replicas) + ptr.Deref(d.Status.TerminatingReplicas, 0)
	}
	connectionsWorstCase.WithLabelValues(ts.Namespace, ts.Name).Set(float64(tuning.WorstCaseConnections(pods, s.PoolMaxConns)))
	if b := ptr.Deref(ts.Spec.Database.MaxTotalConnections, 0); b > 0 {
		connectionBudget.WithLabelValues(ts.Namespace, ts.Name).Set(float64(b))
	} else {
		connectionBudget.DeleteLabelValues(ts.Namespace, ts.Name)
	}
}

// setConfigGeneration reports the generation rendered, which a pod that
// refused its new config (or never saw it) lags behind.
func setConfigGeneration(ts *pacerv1.TunedService, gen int64) {
	renderedGeneration.WithLabelValues(ts.Namespace, ts.Name).Set(float64(gen))
}

func setObservationGauges(ts *pacerv1.TunedService, w tuning.Window, objective time.Duration) {
	tuningObjectiveP99.WithLabelValues(ts.Namespace, ts.Name).Set(objective.Seconds())
	if w.Sufficient && w.P99 > 0 {
		tuningObservedP99.WithLabelValues(ts.Namespace, ts.Name).Set(w.P99.Seconds())
	} else {
		// A p99 from a window long gone would keep "objective missed"
		// firing, or silent, on news that is no longer true.
		tuningObservedP99.DeleteLabelValues(ts.Namespace, ts.Name)
	}
}

// setConditionGauges keeps one series per condition type: the old one of a
// type whose status or reason changed is deleted first.
func setConditionGauges(ts *pacerv1.TunedService) {
	for _, c := range ts.Status.Conditions {
		serviceCondition.DeletePartialMatch(prometheus.Labels{"namespace": ts.Namespace, "name": ts.Name, "type": c.Type})
		serviceCondition.WithLabelValues(ts.Namespace, ts.Name, c.Type, string(c.Status), c.Reason).Set(1)
	}
}

// forgetGauges drops the tuner's gauges of a TunedService that no longer
// tunes (Disabled and back at its spec).
func forgetGauges(key types.NamespacedName) {
	labels := prometheus.Labels{"namespace": key.Namespace, "name": key.Name}
	tuningSetting.DeletePartialMatch(labels)
	tuningObservedP99.DeletePartialMatch(labels)
	tuningObjectiveP99.DeletePartialMatch(labels)
}

// forgetService drops every series of a deleted TunedService.
func forgetService(key types.NamespacedName) {
	forgetGauges(key)
	labels := prometheus.Labels{"namespace": key.Namespace, "name": key.Name}
	for _, v := range []*prometheus.MetricVec{
		tuningDecisions.MetricVec, connectionBudget.MetricVec, connectionsWorstCase.MetricVec,
		renderedGeneration.MetricVec, serviceCondition.MetricVec,
	} {
		v.DeletePartialMatch(labels)
	}
}
