package v1alpha1

import (
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Condition types of a TunedService.
const (
	// ConditionAvailable is True when at least one pod is ready and the
	// Deployment has its minimum availability (its own Available condition).
	ConditionAvailable = "Available"
	// ConditionProgressing is True while the Deployment rolls out (pods
	// being updated, started or removed), and False with the Deployment's
	// reason when the rollout stalled. A live config change reaches the
	// running pods without a rollout and does not show here.
	ConditionProgressing = "Progressing"
	// ConditionDegraded is True when Pacer cannot reach the desired state
	// (a missing Secret, an object it does not own in the way, a failed write).
	ConditionDegraded = "Degraded"
	// ConditionTuned says what the tuner is doing and why.
	ConditionTuned = "Tuned"
	// ConditionAutoscaled is present while a HorizontalPodAutoscaler
	// targets the TunedService (True: it owns replicas; False with
	// WaitingForHPA until it has scaled from its metrics) or its
	// Deployment (False: a misconfiguration Pacer undoes).
	ConditionAutoscaled = "Autoscaled"
)

// MaxHistory is the number of decisions status.history keeps.
const MaxHistory = 20

// Settings are the values Pacer renders and may tune.
type Settings struct {
	// replicas is the number of pods.
	Replicas int32 `json:"replicas"`
	// maxInFlight is workers.maxInFlight per pod.
	MaxInFlight int32 `json:"maxInFlight"`
	// queueDepth is workers.queueDepth per pod.
	QueueDepth int32 `json:"queueDepth"`
	// poolMinConns is database.pool.minConns per pod.
	PoolMinConns int32 `json:"poolMinConns"`
	// poolMaxConns is database.pool.maxConns per pod.
	PoolMaxConns int32 `json:"poolMaxConns"`
	// cacheMaxEntries is cache.maxEntries per pod.
	CacheMaxEntries int32 `json:"cacheMaxEntries"`
	// rateLimitRPS is rateLimit.requestsPerSecond per client per pod (0: off).
	RateLimitRPS int32 `json:"rateLimitRPS"`
	// rateLimitBurst is rateLimit.burst.
	RateLimitBurst int32 `json:"rateLimitBurst"`
}

// EffectiveSettings are the settings rendered for the pods now.
type EffectiveSettings struct {
	Settings `json:",inline"`
	// configGeneration is the generation of the rendered pacer-api config;
	// pods export the generation they run.
	ConfigGeneration int64 `json:"configGeneration"`
	// configHash identifies the rendered config's content.
	ConfigHash string `json:"configHash,omitempty"`
	// specSettings are the spec's own values these settings were derived
	// from. When the spec's value of a setting changes, the user's edit wins
	// over whatever the tuner had chosen.
	// +optional
	SpecSettings *Settings `json:"specSettings,omitempty"`
}

// Observation summarises one window of the pods' metrics.
type Observation struct {
	// time is when the window ended.
	Time metav1.Time `json:"time"`
	// window is the length of the window.
	Window metav1.Duration `json:"window"`
	// pods is the number of pods the window covers.
	Pods int32 `json:"pods"`
	// requestRate is requests per second across all pods.
	RequestRate resource.Quantity `json:"requestRate"`
	// errorRate is 5xx responses per second.
	// +optional
	ErrorRate *resource.Quantity `json:"errorRate,omitempty"`
	// rejectedRate is 429 and 503 responses per second.
	// +optional
	RejectedRate *resource.Quantity `json:"rejectedRate,omitempty"`
	// latencyP50 is the median request latency.
	// +optional
	LatencyP50 *metav1.Duration `json:"latencyP50,omitempty"`
	// latencyP95 is the 95th percentile request latency.
	// +optional
	LatencyP95 *metav1.Duration `json:"latencyP95,omitempty"`
	// latencyP99 is the 99th percentile request latency.
	// +optional
	LatencyP99 *metav1.Duration `json:"latencyP99,omitempty"`
	// workerUtilization is the share of worker slots in use, in percent.
	// +optional
	WorkerUtilization *int32 `json:"workerUtilization,omitempty"`
	// cacheHitRatio is the share of cache lookups that hit, in percent.
	// +optional
	CacheHitRatio *int32 `json:"cacheHitRatio,omitempty"`
	// poolAcquireWait is the mean time a request waited for a database connection.
	// +optional
	PoolAcquireWait *metav1.Duration `json:"poolAcquireWait,omitempty"`
	// sufficient is false when the window cannot be trusted: no ready pods,
	// a pod not observed (a failed scrape) or without an earlier sample to
	// make a window with, pods not reporting their config generation, not
	// all on the one in effect, or changing it during the window. A quiet
	// window still counts (low demand is a signal); reason says why not.
	Sufficient bool `json:"sufficient"`
	// reason explains an insufficient window.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// Change is one setting changed by one decision.
type Change struct {
	// setting is the name of the setting, as in Settings (for example maxInFlight).
	Setting string `json:"setting"`
	// from is the value before.
	From int32 `json:"from"`
	// to is the value after.
	To int32 `json:"to"`
	// reason says why, in words.
	Reason string `json:"reason"`
	// source is who made the change: Tuner (a tuning decision), User (an
	// edit of the spec that wins over a tuned value), Revert (the tuner
	// undoing its own last change because it made p99 worse at the same
	// load), Spec (a step back to the spec's value after leaving Auto) or
	// Budget (a cut that keeps the connections within the budget). Empty in
	// history written before this field existed.
	// +optional
	Source ChangeSource `json:"source,omitempty"`
}

// ChangeSource says who made a change.
// +kubebuilder:validation:Enum=Tuner;User;Revert;Spec;Budget
type ChangeSource string

const (
	ChangeByTuner  ChangeSource = "Tuner"
	ChangeByUser   ChangeSource = "User"
	ChangeByRevert ChangeSource = "Revert"
	ChangeToSpec   ChangeSource = "Spec"
	ChangeByBudget ChangeSource = "Budget"
)

// Recommendation is the tuner's latest decision.
type Recommendation struct {
	// time is when the decision was made.
	Time metav1.Time `json:"time"`
	// settings are the recommended settings.
	Settings Settings `json:"settings"`
	// changes lists what differs from the settings in effect, each with its reason.
	// +optional
	// +listType=atomic
	Changes []Change `json:"changes,omitempty"`
}

// Decision is an entry of status.history.
type Decision struct {
	// time is when the decision was made.
	Time metav1.Time `json:"time"`
	// mode is the tuning mode at the time.
	Mode TuningMode `json:"mode"`
	// applied is true when the change was rendered to the pods (Auto mode),
	// false for a recommendation or a user's edit that overrode the tuner.
	Applied bool `json:"applied"`
	// changes lists the settings changed, each with its reason.
	// +listType=atomic
	Changes []Change `json:"changes"`
}

// TunedServiceStatus is what Pacer observed and did.
type TunedServiceStatus struct {
	// observedGeneration is the spec generation the last successful reconcile acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions are Available (a ready pod and the Deployment's minimum
	// availability), Progressing (True while the Deployment rolls out; a
	// live config change reaches running pods without one and does not show
	// here), Degraded (Pacer cannot reach the desired state) and Tuned (what
	// the tuner does and why; docs/troubleshooting.md lists its reasons).
	// +listType=map
	// +listMapKey=type
	// +patchStrategy=merge
	// +patchMergeKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"`

	// replicas is the number of pods of the current Deployment (scale subresource).
	// +optional
	Replicas int32 `json:"replicas"`
	// readyReplicas is the number of ready pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas"`
	// updatedReplicas is the number of pods running the current pod template.
	// +optional
	UpdatedReplicas int32 `json:"updatedReplicas,omitempty"`
	// selector is the pods' label selector, for the scale subresource.
	// +optional
	Selector string `json:"selector,omitempty"`

	// effective are the settings rendered for the pods now.
	// +optional
	Effective *EffectiveSettings `json:"effective,omitempty"`

	// recommendation is the tuner's latest decision (Recommend and Auto modes).
	// +optional
	Recommendation *Recommendation `json:"recommendation,omitempty"`

	// lastObservation summarises the latest metrics window.
	// +optional
	LastObservation *Observation `json:"lastObservation,omitempty"`

	// history lists the most recent decisions, newest first.
	// +kubebuilder:validation:MaxItems=20
	// +listType=atomic
	// +optional
	History []Decision `json:"history,omitempty"`
}
