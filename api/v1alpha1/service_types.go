package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// WorkersSpec bounds the requests a pod works on at once. Changes apply live,
// without restarting pods.
type WorkersSpec struct {
	// maxInFlight is the number of requests a pod processes concurrently.
	// With tuning and tuning.bounds.workers set, Pacer chooses it within those bounds.
	// +kubebuilder:default=64
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100000
	// +optional
	MaxInFlight int32 `json:"maxInFlight,omitempty"`

	// queueDepth is how many more requests may wait for a worker; beyond
	// that a pod sheds load with 503 at once.
	// +kubebuilder:default=256
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	QueueDepth *int32 `json:"queueDepth,omitempty"`

	// queueTimeout is the longest a request waits for a worker before 503.
	// +kubebuilder:default="250ms"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +optional
	QueueTimeout *metav1.Duration `json:"queueTimeout,omitempty"`
}

// SecretKeyRef names one key of a Secret in the TunedService's namespace.
type SecretKeyRef struct {
	// name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Name string `json:"name"`

	// key within the Secret whose value is the URL.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +required
	Key string `json:"key"`
}

// DatabaseSpec is the PostgreSQL the service uses.
type DatabaseSpec struct {
	// urlSecretRef names the Secret key holding the PostgreSQL URL
	// (postgres://user:password@host:5432/db). It reaches pods only as the
	// DATABASE_URL environment variable; Pacer never reads or copies it.
	// Pointing it at another Secret restarts the pods.
	// +required
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`

	// pool sizes each pod's connection pool. Changes apply live: a pod builds
	// a new pool and drains the old one.
	// +kubebuilder:default={}
	// +optional
	Pool PoolSpec `json:"pool,omitempty"`

	// statementTimeout is PostgreSQL's statement_timeout for every
	// connection; "0s" leaves the server's default.
	// +kubebuilder:default="2s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +optional
	StatementTimeout *metav1.Duration `json:"statementTimeout,omitempty"`

	// maxTotalConnections is the connection budget of the database across
	// all pods. When set, every connection the pods may open never exceeds
	// it: each pod's pool plus its one-connection /readyz pool, counting
	// pods that start, surge in a rollout or terminate, neither in the spec
	// nor in anything the tuner chooses.
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxTotalConnections *int32 `json:"maxTotalConnections,omitempty"`

	// budgetRef joins the service to a ConnectionBudget in its namespace,
	// which several services on one database share. The pods then hold at
	// most the allocation the budget gives the service (and
	// maxTotalConnections, if set, too); until the budget admits the
	// service, no pods are rendered.
	// +optional
	BudgetRef *BudgetRef `json:"budgetRef,omitempty"`
}

// PoolSpec sizes a pod's PostgreSQL connection pool.
//
// +kubebuilder:validation:XValidation:rule="!has(self.minConns) || !has(self.maxConns) || self.minConns <= self.maxConns",message="minConns must not exceed maxConns"
type PoolSpec struct {
	// minConns is the number of connections a pod keeps open when idle.
	// +kubebuilder:default=2
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000
	// +optional
	MinConns *int32 `json:"minConns,omitempty"`

	// maxConns is the most connections a pod opens. With tuning and
	// tuning.bounds.poolMaxConns set, Pacer chooses it within those bounds.
	// +kubebuilder:default=16
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=10000
	// +optional
	MaxConns int32 `json:"maxConns,omitempty"`

	// maxConnLifetime is how long a connection lives before it is replaced.
	// +kubebuilder:default="30m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="maxConnLifetime must be positive"
	// +optional
	MaxConnLifetime *metav1.Duration `json:"maxConnLifetime,omitempty"`

	// maxConnIdleTime is how long an idle connection is kept.
	// +kubebuilder:default="5m"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="maxConnIdleTime must be positive"
	// +optional
	MaxConnIdleTime *metav1.Duration `json:"maxConnIdleTime,omitempty"`

	// healthCheckPeriod is how often idle connections are checked.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="healthCheckPeriod must be positive"
	// +optional
	HealthCheckPeriod *metav1.Duration `json:"healthCheckPeriod,omitempty"`
}

// ClientKey says what identifies a client for rate limiting.
// +kubebuilder:validation:Enum=IP;Header
type ClientKey string

const (
	// ClientKeyIP identifies a client by its address (X-Forwarded-For only from trusted proxies).
	ClientKeyIP ClientKey = "IP"
	// ClientKeyHeader identifies a client by the value of a header.
	ClientKeyHeader ClientKey = "Header"
)

// RateLimitSpec limits each client's request rate with a token bucket.
// Changes apply live.
//
// +kubebuilder:validation:XValidation:rule="!has(self.clientKey) || self.clientKey != 'Header' || (has(self.header) && size(self.header) > 0)",message="header is required when clientKey is Header"
type RateLimitSpec struct {
	// requestsPerSecond is each client's sustained rate per pod; 0 turns rate limiting off.
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	RequestsPerSecond *int32 `json:"requestsPerSecond,omitempty"`

	// burst is how many requests a client may send at once; defaults to requestsPerSecond.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	Burst *int32 `json:"burst,omitempty"`

	// clientKey is what identifies a client: IP or Header.
	// +kubebuilder:default=IP
	// +optional
	ClientKey ClientKey `json:"clientKey,omitempty"`

	// header names the header that identifies a client when clientKey is Header.
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[!#$%&'*+.^_|~0-9A-Za-z-]+$`
	// +optional
	Header string `json:"header,omitempty"`

	// trustedProxies are the CIDRs whose X-Forwarded-For header is believed.
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=43
	// +kubebuilder:validation:XValidation:rule="self.all(c, isCIDR(c))",message="trustedProxies must be CIDRs such as 10.0.0.0/8"
	// +listType=set
	// +optional
	TrustedProxies []string `json:"trustedProxies,omitempty"`
}

// CacheSpec configures the read-through user cache. Changes apply live.
type CacheSpec struct {
	// ttl is how long a cached user is served; "0s" turns the cache off.
	// +kubebuilder:default="30s"
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+([.][0-9]+)?(ns|us|ms|s|m|h))+$')",message="must be a duration such as 250ms, 30s or 1m30s"
	// +optional
	TTL *metav1.Duration `json:"ttl,omitempty"`

	// maxEntries bounds each pod's in-process cache; 0 turns the cache off.
	// With tuning and tuning.bounds.cacheMaxEntries set, Pacer chooses it.
	// +kubebuilder:default=10000
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=10000000
	// +optional
	MaxEntries *int32 `json:"maxEntries,omitempty"`

	// redis adds a shared Redis layer behind each pod's in-process cache.
	// +optional
	Redis *RedisSpec `json:"redis,omitempty"`
}

// RedisSpec locates the shared cache layer.
type RedisSpec struct {
	// urlSecretRef names the Secret key holding the Redis URL
	// (redis://:password@host:6379/0). It reaches pods only as the REDIS_URL
	// environment variable.
	// +required
	URLSecretRef SecretKeyRef `json:"urlSecretRef"`
}
