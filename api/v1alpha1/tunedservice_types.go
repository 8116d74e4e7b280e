package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DefaultImage is the pacer-api image of this API version: the operator's
// --default-api-image unless its build says otherwise.
const DefaultImage = "ghcr.io/pacer-dev/pacer-api:v0.1.0"

// TunedServiceSpec describes a pacer-api deployment and the bounds within
// which Pacer may tune it.
//
// +kubebuilder:validation:XValidation:rule="!has(self.database.maxTotalConnections) || !has(self.replicas) || !has(self.database.pool.maxConns) || self.replicas * (self.database.pool.maxConns + 1) <= self.database.maxTotalConnections",message="replicas × (database.pool.maxConns + 1 health connection) must not exceed database.maxTotalConnections"
// +kubebuilder:validation:XValidation:rule="!has(self.database.maxTotalConnections) || !has(self.tuning) || !has(self.tuning.bounds) || !has(self.tuning.bounds.replicas) || self.tuning.bounds.replicas.max * ((has(self.tuning.bounds.poolMaxConns) ? self.tuning.bounds.poolMaxConns.min : (has(self.database.pool.maxConns) ? self.database.pool.maxConns : 16)) + 1) <= self.database.maxTotalConnections",message="tuning.bounds.replicas.max × (the smallest allowed pool size + 1 health connection) must not exceed database.maxTotalConnections (the smallest pool is tuning.bounds.poolMaxConns.min, or database.pool.maxConns when pool size is not tuned)"
// +kubebuilder:validation:XValidation:rule="!has(self.database.budgetRef) || self.database.budgetRef.min >= (((has(self.tuning) && has(self.tuning.bounds) && has(self.tuning.bounds.poolMaxConns)) ? self.tuning.bounds.poolMaxConns.min : (has(self.database.pool.maxConns) ? self.database.pool.maxConns : 16)) + 1) * ((has(self.tuning) && has(self.tuning.bounds) && has(self.tuning.bounds.replicas)) ? self.tuning.bounds.replicas.min : (has(self.replicas) ? self.replicas : 1))",message="database.budgetRef.min must cover the smallest pods: replicas (tuning.bounds.replicas.min, else replicas) × (the smallest pool + 1 health connection)"
// +kubebuilder:validation:XValidation:rule="!has(self.database.budgetRef) || self.database.budgetRef.min <= (((has(self.tuning) && has(self.tuning.bounds) && has(self.tuning.bounds.poolMaxConns)) ? self.tuning.bounds.poolMaxConns.max : (has(self.database.pool.maxConns) ? self.database.pool.maxConns : 16)) + 1) * ((has(self.tuning) && has(self.tuning.bounds) && has(self.tuning.bounds.replicas)) ? self.tuning.bounds.replicas.max : (has(self.replicas) ? self.replicas : 1))",message="database.budgetRef.min must not exceed what the service can use: replicas (tuning.bounds.replicas.max, else replicas) × (the largest pool + 1 health connection)"
type TunedServiceSpec struct {
	// image is the pacer-api container image. Unset, the pods run the
	// pacer-api image of the operator's own version, and move with it when
	// the operator is upgraded.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +optional
	Image string `json:"image,omitempty"`

	// replicas is the number of pods. With tuning in Auto mode and
	// tuning.bounds.replicas set, Pacer chooses the number within those bounds
	// and this is the starting point. Served by the scale subresource, so
	// `kubectl scale` works.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`

	// resources are the pacer-api container's compute resources. When a
	// memory limit is set, the Go runtime's soft memory limit (GOMEMLIMIT)
	// follows it.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// pod holds optional scheduling and metadata extras for the pods.
	// +optional
	Pod *PodExtras `json:"pod,omitempty"`

	// workers bounds the requests each pod works on at once.
	// +kubebuilder:default={}
	// +optional
	Workers WorkersSpec `json:"workers,omitempty"`

	// database is the PostgreSQL the service stores users in.
	// +required
	Database DatabaseSpec `json:"database"`

	// rateLimit limits each client's request rate. Off unless requestsPerSecond is set.
	// +kubebuilder:default={}
	// +optional
	RateLimit RateLimitSpec `json:"rateLimit,omitempty"`

	// cache configures the read-through user cache.
	// +kubebuilder:default={}
	// +optional
	Cache CacheSpec `json:"cache,omitempty"`

	// requestTimeout bounds each request, database queries included; a
	// request that takes longer gets 504.
	// +kubebuilder:default="5s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="requestTimeout must be positive"
	// +optional
	RequestTimeout *metav1.Duration `json:"requestTimeout,omitempty"`

	// shutdownGracePeriod is how long a stopping pod may spend finishing
	// in-flight and queued requests and background jobs.
	// +kubebuilder:default="20s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) <= duration('1h')",message="shutdownGracePeriod must be at most 1h"
	// +optional
	ShutdownGracePeriod *metav1.Duration `json:"shutdownGracePeriod,omitempty"`

	// tuning says whether and how Pacer tunes this service from its metrics.
	// +kubebuilder:default={}
	// +optional
	Tuning TuningSpec `json:"tuning,omitempty"`
}

// PodExtras are optional additions to the pods' template.
type PodExtras struct {
	// labels are added to the pods (the app.kubernetes.io labels Pacer sets win).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations are added to the pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// nodeSelector constrains the nodes the pods may run on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// tolerations let the pods schedule onto tainted nodes.
	// +optional
	// +listType=atomic
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// affinity holds the pods' scheduling constraints.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// priorityClassName is the pods' priority class.
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// imagePullSecrets name Secrets in this namespace with the credentials
	// to pull a private spec.image. Pacer only passes their names on.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	// +listType=atomic
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// topologySpreadConstraints spread the pods across zones or nodes.
	// +optional
	// +kubebuilder:validation:MaxItems=8
	// +listType=atomic
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	// serviceAccountName is the pods' service account (for image pull
	// credentials or workload identity). pacer-api never calls the
	// Kubernetes API, so no token is mounted whichever account it is.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
}

// TunedService is a pacer-api deployment that Pacer reconciles and tunes.
//
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",message="name must be a DNS label of at most 63 characters starting with a letter, because the Service shares it"
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:subresource:scale:specpath=.spec.replicas,statuspath=.status.replicas,selectorpath=.status.selector
// +kubebuilder:resource:shortName=tsvc,categories=pacer
// +kubebuilder:printcolumn:name="Mode",type=string,JSONPath=`.spec.tuning.mode`
// +kubebuilder:printcolumn:name="Replicas",type=integer,JSONPath=`.status.replicas`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Workers",type=integer,JSONPath=`.status.effective.maxInFlight`
// +kubebuilder:printcolumn:name="Pool",type=integer,JSONPath=`.status.effective.poolMaxConns`
// +kubebuilder:printcolumn:name="P99",type=string,JSONPath=`.status.lastObservation.latencyP99`
// +kubebuilder:printcolumn:name="Objective",type=string,JSONPath=`.spec.tuning.objective.latencyP99`,priority=1
// +kubebuilder:printcolumn:name="Tuned",type=string,JSONPath=`.status.conditions[?(@.type=="Tuned")].status`
// +kubebuilder:printcolumn:name="Tuner",type=string,JSONPath=`.status.conditions[?(@.type=="Tuned")].message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TunedService struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec TunedServiceSpec `json:"spec"`

	// status is what Pacer observed and did.
	// +optional
	Status TunedServiceStatus `json:"status,omitempty"`
}

// TunedServiceList is a list of TunedServices.
//
// +kubebuilder:object:root=true
type TunedServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TunedService `json:"items"`
}
