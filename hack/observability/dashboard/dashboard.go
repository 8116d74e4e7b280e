// Package dashboard builds Pacer's Grafana dashboard as typed Go, with
// grafana-foundation-sdk: per TunedService its p99 against the objective,
// load, errors, the settings with each change as an annotation, connections
// against the budget, the pods' pool, workers, queue and cache; and the
// operator's own reconcile and workqueue panels.
//
// Every query names only metrics the project exports (pacer-api's from
// service/metrics, the operator's from controllers and controller-runtime);
// the tests parse each one with Prometheus's parser and check that.
package dashboard

import (
	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's stable identifier, so links to it survive updates.
const UID = "pacer-overview"

// sel selects the chosen TunedServices' series; pacer-api's get namespace
// and name from the PodMonitor, the operator's carry them themselves.
const sel = `namespace="$namespace", name=~"$name"`

// operator selects the TunedService controller's own series.
const operator = `controller="tunedservice"`

func ds() common.DataSourceRef {
	return common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}
}

func query(expr, legend string) *prometheus.DataqueryBuilder {
	return prometheus.NewDataqueryBuilder().Datasource(ds()).Expr(expr).LegendFormat(legend)
}

func graph(title, unit, description string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	p := timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(ds()).
		Unit(unit).
		Height(8).
		Span(12).
		FillOpacity(10).
		ShowPoints(common.VisibilityModeNever)
	for _, q := range queries {
		p.WithTarget(q)
	}
	return p
}

// Build returns the dashboard, in the classic JSON model: the one Grafana's
// dashboard sidecar, file provisioning and import read in every version the
// Prometheus Operator's stacks ship (the v2 model needs Grafana 12's
// dashboard API).
//
//nolint:staticcheck // the classic model, on purpose (above)
func Build() (dashboard.Dashboard, error) {
	return dashboard.NewDashboardBuilder("Pacer").
		Uid(UID).
		Description("TunedServices against their objectives, what the tuner changed, and the operator itself.").
		Tags([]string{"pacer", "kubernetes", "operator"}).
		Editable().
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Refresh("30s").
		Time("now-3h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").Label("Prometheus").Type("prometheus")).
		WithVariable(labelVariable("namespace", "Namespace", `label_values(pacer_tuning_objective_p99_seconds, namespace)`, false)).
		WithVariable(labelVariable("name", "TunedService", `label_values(pacer_tuning_objective_p99_seconds{namespace="$namespace"}, name)`, true)).
		Annotation(dashboard.NewAnnotationQueryBuilder().
			Name("Tuning changes").
			Datasource(ds()).
			Enable(true).
			IconColor("orange").
			Expr(`sum by (name, setting, direction, source) (changes(pacer_tuning_decisions_total{` + sel + `}[$__interval])) > 0`).
			Step("30s").
			TitleFormat("{{name}}: {{setting}} {{direction}}").
			TextFormat("by {{source}}").
			TagKeys("name,setting,source")).
		WithRow(dashboard.NewRowBuilder("TunedServices")).
		WithPanel(graph("p99 latency against the objective", "s",
			"The pods' p99 from their histograms, the p99 of the tuner's latest trusted window, and the objective.",
			query(`histogram_quantile(0.99, sum by (name, le) (rate(pacer_http_request_duration_seconds_bucket{`+sel+`}[$__rate_interval])))`, "{{name}} p99"),
			query(`max by (name) (pacer_tuning_observed_p99_seconds{`+sel+`})`, "{{name}} p99 (tuner's window)"),
			query(`max by (name) (pacer_tuning_objective_p99_seconds{`+sel+`})`, "{{name}} objective"),
		)).
		WithPanel(graph("Load", "reqps", "Finished requests per second.",
			query(`sum by (name) (rate(pacer_http_requests_total{`+sel+`}[$__rate_interval]))`, "{{name}}"),
		)).
		WithPanel(graph("Errors and refusals", "reqps",
			"Answers 5xx, requests shed with 503 by the worker queue (by reason), and refused with 429 by the rate limit.",
			query(`sum by (name) (rate(pacer_http_requests_total{`+sel+`, code="5xx"}[$__rate_interval]))`, "{{name}} 5xx"),
			query(`sum by (name, reason) (rate(pacer_queue_rejections_total{`+sel+`}[$__rate_interval]))`, "{{name}} shed: {{reason}}"),
			query(`sum by (name) (rate(pacer_ratelimit_rejections_total{`+sel+`}[$__rate_interval]))`, "{{name}} 429"),
		)).
		WithPanel(graph("Settings", "short",
			"Each tunable setting as rendered; the orange marks are the tuner's changes.",
			query(`max by (name, setting) (pacer_tuning_setting{`+sel+`})`, "{{name}} {{setting}}"),
		)).
		WithPanel(graph("Database connections against the budget", "short",
			"What each service's pods may hold at once (surging and terminating pods, and the health pool, included), stacked, against spec.database.maxTotalConnections.",
			query(`max by (name) (pacer_tuning_connections_worst_case{`+sel+`})`, "{{name}} worst case"),
			query(`max by (name) (pacer_tuning_connection_budget{`+sel+`})`, "{{name}} budget"),
		).
			Stacking(common.NewStackingConfigBuilder().Mode(common.StackingModeNormal)).
			OverrideByRegexp(".* budget", []dashboard.DynamicConfigValue{
				{Id: "custom.stacking", Value: map[string]any{"mode": "none"}},
				{Id: "custom.fillOpacity", Value: 0},
				{Id: "custom.lineStyle", Value: map[string]any{"fill": "dash", "dash": []int{10, 10}}},
			})).
		WithPanel(statetimeline.NewPanelBuilder().
			Title("Tuned condition").
			Description("The reason of each service's Tuned condition over time (docs/troubleshooting.md says what each means).").
			Datasource(ds()).
			Height(8).
			Span(12).
			ShowValue(common.VisibilityModeNever).
			WithTarget(query(`max by (name, reason) (pacer_tunedservice_condition{`+sel+`, type="Tuned"}) == 1`, "{{name}} {{reason}}"))).
		WithRow(dashboard.NewRowBuilder("pacer-api pods")).
		WithPanel(graph("Pool acquire wait", "s",
			"Mean time a request waited for a database connection, and the share of acquires that found the pool empty.",
			query(`sum by (name) (rate(pacer_db_pool_acquire_wait_seconds_total{`+sel+`}[$__rate_interval])) / sum by (name) (rate(pacer_db_pool_acquires_total{`+sel+`}[$__rate_interval]))`, "{{name}} mean wait"),
		)).
		WithPanel(graph("Pool connections", "short", "Connections acquired and open, against the pools' maximum, summed over the pods.",
			query(`sum by (name) (pacer_db_pool_acquired_conns{`+sel+`})`, "{{name}} acquired"),
			query(`sum by (name) (pacer_db_pool_total_conns{`+sel+`})`, "{{name}} open"),
			query(`sum by (name) (pacer_db_pool_max_conns{`+sel+`})`, "{{name}} max"),
		)).
		WithPanel(graph("In flight against the worker limit", "short", "Requests holding a worker slot, against maxInFlight, summed over the pods.",
			query(`sum by (name) (pacer_http_requests_in_flight{`+sel+`})`, "{{name}} in flight"),
			query(`sum by (name) (pacer_worker_limit{`+sel+`})`, "{{name}} limit"),
		)).
		WithPanel(graph("Queue", "short", "Requests waiting for a worker slot, against queueDepth, summed over the pods.",
			query(`sum by (name) (pacer_queue_length{`+sel+`})`, "{{name}} queued"),
			query(`sum by (name) (pacer_queue_depth_limit{`+sel+`})`, "{{name}} depth limit"),
		)).
		WithPanel(graph("Cache hit ratio", "percentunit", "Hits over lookups, by cache layer (local, redis).",
			query(`sum by (name, layer) (rate(pacer_cache_hits_total{`+sel+`}[$__rate_interval])) / (sum by (name, layer) (rate(pacer_cache_hits_total{`+sel+`}[$__rate_interval])) + sum by (name, layer) (rate(pacer_cache_misses_total{`+sel+`}[$__rate_interval])))`, "{{name}} {{layer}}"),
		).Min(0).Max(1)).
		WithPanel(graph("Config generation", "short", "The config generation each pod runs, against the one Pacer rendered: a pod below it refused its file.",
			query(`max by (name, pod) (pacer_config_generation{`+sel+`})`, "{{pod}}"),
			query(`max by (name) (pacer_tunedservice_config_generation{`+sel+`})`, "{{name}} rendered"),
		)).
		WithRow(dashboard.NewRowBuilder("Operator")).
		WithPanel(graph("Reconciles", "ops", "TunedService reconciles per second by result, and errors.",
			query(`sum by (result) (rate(controller_runtime_reconcile_total{`+operator+`}[$__rate_interval]))`, "{{result}}"),
			query(`sum (rate(controller_runtime_reconcile_errors_total{`+operator+`}[$__rate_interval]))`, "errors"),
		)).
		WithPanel(graph("Reconcile duration", "s", "p50 and p99 of one reconcile pass.",
			query(`histogram_quantile(0.5, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{`+operator+`}[$__rate_interval])))`, "p50"),
			query(`histogram_quantile(0.99, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket{`+operator+`}[$__rate_interval])))`, "p99"),
		)).
		WithPanel(graph("Workqueue depth", "short", "TunedServices waiting for a reconcile worker.",
			query(`sum (workqueue_depth{name="tunedservice"})`, "depth"),
		)).
		WithPanel(graph("Workqueue wait", "s", "p99 of the time a TunedService waited in the workqueue before a worker took it.",
			query(`histogram_quantile(0.99, sum by (le) (rate(workqueue_queue_duration_seconds_bucket{name="tunedservice"}[$__rate_interval])))`, "p99"),
		)).
		Build()
}

func labelVariable(name, label, q string, multi bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(name).
		Label(label).
		Datasource(ds()).
		Query(dashboard.StringOrMap{String: cog.ToPtr(q)}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}
