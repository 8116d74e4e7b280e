package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// TuningMode says what Pacer does with its decisions. Every value is
// safe to write unquoted in YAML; Off, the old spelling of Disabled, is a
// boolean in YAML 1.1 unless quoted ("Off"), so Disabled replaces it.
// +kubebuilder:validation:Enum=Disabled;Recommend;Auto;Hold;Off
type TuningMode string

const (
	// TuningDisabled computes nothing; settings the tuner had moved return
	// to the spec's values under the step limits, then the spec is
	// rendered as written.
	TuningDisabled TuningMode = "Disabled"
	// TuningOff is the old spelling of TuningDisabled, still accepted.
	TuningOff TuningMode = "Off"
	// TuningHold freezes the settings in effect: nothing is observed or
	// changed until the mode changes (a user's edit still wins).
	TuningHold TuningMode = "Hold"
	// TuningRecommend computes decisions and shows them in status.recommendation only.
	TuningRecommend TuningMode = "Recommend"
	// TuningAuto applies decisions within the bounds.
	TuningAuto TuningMode = "Auto"
)

// MetricsSource says where Pacer reads the pods' metrics from.
// +kubebuilder:validation:Enum=Pods;Prometheus
type MetricsSource string

const (
	// MetricsFromPods scrapes each ready pod's admin /metrics endpoint.
	MetricsFromPods MetricsSource = "Pods"
	// MetricsFromPrometheus queries a Prometheus server that scrapes the pods.
	MetricsFromPrometheus MetricsSource = "Prometheus"
)

// TuningSpec says whether and how Pacer tunes the service.
type TuningSpec struct {
	// mode is Disabled (nothing computed; tuned settings return to the
	// spec), Recommend (decisions shown in status only), Auto (decisions
	// applied within bounds) or Hold (the settings in effect are frozen).
	// "Off" is still accepted for Disabled, but must be quoted: bare Off
	// is the boolean false in YAML 1.1.
	// +kubebuilder:default=Recommend
	// +optional
	Mode TuningMode `json:"mode,omitempty"`

	// interval is how often Pacer decides. It observes the pods more often,
	// in equal windows of at most 10s (the panic horizon), and acts at once
	// on what cannot wait for the interval: the objective missed with a
	// resource queueing, or demand twice what the ready pods carry. With
	// metrics from Prometheus it observes once per interval.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('5s') && duration(self) <= duration('1h')",message="interval must be between 5s and 1h"
	// +optional
	Interval *metav1.Duration `json:"interval,omitempty"`

	// objective is what tuning aims for.
	// +kubebuilder:default={}
	// +optional
	Objective ObjectiveSpec `json:"objective,omitempty"`

	// bounds limit what the tuner may choose. A setting without bounds is
	// not tuned and stays as the spec says.
	// +optional
	Bounds TuningBounds `json:"bounds,omitempty"`

	// stabilization windows damp changes: a scale-down is only made when
	// every decision in the window agreed, as the HPA does.
	// +kubebuilder:default={}
	// +optional
	Stabilization StabilizationSpec `json:"stabilization,omitempty"`

	// metrics says where the pods' metrics come from.
	// +kubebuilder:default={}
	// +optional
	Metrics MetricsSpec `json:"metrics,omitempty"`
}

// ObjectiveSpec is the service level the tuner aims for at the least cost.
type ObjectiveSpec struct {
	// latencyP99 is the 99th percentile request latency to stay under.
	// +kubebuilder:default="100ms"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1ms') && duration(self) <= duration('1m')",message="latencyP99 must be between 1ms and 1m"
	// +optional
	LatencyP99 *metav1.Duration `json:"latencyP99,omitempty"`

	// targetUtilization is the share, in percent, of each pod's busiest
	// resource that replicas are sized for: its worker slots in use
	// (requests in flight over maxInFlight) or, when spec.resources sets a
	// CPU limit, its CPU use over that limit (a request is no ceiling, so it
	// is not used). Lower leaves more headroom for bursts.
	// +kubebuilder:default=70
	// +kubebuilder:validation:Minimum=10
	// +kubebuilder:validation:Maximum=95
	// +optional
	TargetUtilization *int32 `json:"targetUtilization,omitempty"`
}

// Int32Range is an inclusive range.
//
// +kubebuilder:validation:XValidation:rule="self.min <= self.max",message="min must not exceed max"
type Int32Range struct {
	// min is the smallest value allowed.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000000
	// +required
	Min int32 `json:"min"`
	// max is the largest value allowed; each setting's own maximum applies.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000000
	// +required
	Max int32 `json:"max"`
}

// TuningBounds are the ranges each tuned setting stays in.
//
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas.min >= 1",message="replicas.min must be at least 1: Pacer does not scale to zero (nothing would hold requests while the first pod starts, and with no pod there are no metrics to scale up from)"
// +kubebuilder:validation:XValidation:rule="!has(self.workers) || self.workers.min >= 1",message="workers.min must be at least 1"
// +kubebuilder:validation:XValidation:rule="!has(self.poolMaxConns) || self.poolMaxConns.min >= 1",message="poolMaxConns.min must be at least 1"
// +kubebuilder:validation:XValidation:rule="!has(self.replicas) || self.replicas.max <= 1000",message="replicas.max must be at most 1000, as spec.replicas"
// +kubebuilder:validation:XValidation:rule="!has(self.workers) || self.workers.max <= 100000",message="workers.max must be at most 100000, as spec.workers.maxInFlight"
// +kubebuilder:validation:XValidation:rule="!has(self.poolMaxConns) || self.poolMaxConns.max <= 10000",message="poolMaxConns.max must be at most 10000, as spec.database.pool.maxConns"
type TuningBounds struct {
	// replicas bounds the number of pods.
	// +optional
	Replicas *Int32Range `json:"replicas,omitempty"`
	// workers bounds workers.maxInFlight per pod.
	// +optional
	Workers *Int32Range `json:"workers,omitempty"`
	// poolMaxConns bounds database.pool.maxConns per pod.
	// +optional
	PoolMaxConns *Int32Range `json:"poolMaxConns,omitempty"`
	// cacheMaxEntries bounds cache.maxEntries per pod.
	// +optional
	CacheMaxEntries *Int32Range `json:"cacheMaxEntries,omitempty"`
}

// StabilizationSpec holds the windows that damp changes.
type StabilizationSpec struct {
	// scaleUp is how long a higher recommendation must hold before it is applied.
	// +kubebuilder:default="0s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="scaleUp must be at most 1h"
	// +optional
	ScaleUp *metav1.Duration `json:"scaleUp,omitempty"`
	// scaleDown is how long a lower recommendation must hold before it is applied.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="scaleDown must be at most 1h"
	// +optional
	ScaleDown *metav1.Duration `json:"scaleDown,omitempty"`
}

// MetricsSpec says where the pods' metrics come from.
//
// +kubebuilder:validation:XValidation:rule="!has(self.source) || self.source != 'Prometheus' || (has(self.prometheusURL) && size(self.prometheusURL) > 0)",message="prometheusURL is required when source is Prometheus"
// +kubebuilder:validation:XValidation:rule="!has(self.authSecretRef) || (has(self.source) && self.source == 'Prometheus')",message="authSecretRef applies only to source Prometheus"
type MetricsSpec struct {
	// source is Pods (scrape each ready pod's admin port) or Prometheus.
	// +kubebuilder:default=Pods
	// +optional
	Source MetricsSource `json:"source,omitempty"`
	// prometheusURL is the base URL of the Prometheus HTTP API, such as
	// http://prometheus.monitoring.svc:9090. The operator fetches only the
	// servers its --prometheus-endpoints allows (in-cluster Service names by
	// default), dials a private address only in a range its
	// --metrics-allow-cidr allows (usually the Service CIDR), and follows
	// no redirect.
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="isURL(self) && (url(self).getScheme() == 'http' || url(self).getScheme() == 'https')",message="prometheusURL must be an http or https URL"
	// +optional
	PrometheusURL string `json:"prometheusURL,omitempty"`
	// authSecretRef names a Secret in this namespace holding the
	// credentials for prometheusURL: `token` (a bearer token), or
	// `username` and `password` (basic authentication); and optionally
	// `ca.crt`, the PEM authorities trusted for https. The Secret must be
	// labelled pacer.dev/metrics-credentials: "true", and prometheusURL
	// must be https. The operator reads this one Secret directly, once per
	// tuning interval, and never copies its values anywhere.
	// +optional
	AuthSecretRef *SecretRef `json:"authSecretRef,omitempty"`
}

// SecretRef names a Secret in the TunedService's namespace.
type SecretRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Name string `json:"name"`
}
