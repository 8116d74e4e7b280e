// Package tuning decides how a TunedService's settings should change
// (the project's third contract). Decide is a pure function: everything it needs is
// passed in (spec, settings in effect, an observation window, recent
// history, the time), so it is tested exhaustively with tables and
// simulations, and it does no I/O, reads no clock and draws no random numbers.
//
// controllers/metrics produces the Window; the reconciler applies the Decision.
package tuning

import (
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Window is what the pods' metrics say about one interval, already reduced
// from two or more scrapes to rates and quantiles. Sums are across all ready
// pods; per-pod figures are means over those pods.
type Window struct {
	// Start and End bound the interval.
	Start, End time.Time
	// Pods is the number of ready pods the window covers.
	Pods int
	// Generation is the config generation every covered pod runs.
	Generation int64

	// RequestRate is finished requests per second, all pods, whatever
	// their status (refused ones included: the tuner reads it as arrivals).
	RequestRate float64
	// ErrorRate is 5xx responses per second (503 and 504 included).
	ErrorRate float64
	// ShedRate is requests refused with 503 by the worker queue, per second.
	ShedRate float64
	// RateLimitedRate is requests refused with 429, per second.
	RateLimitedRate float64

	// P50, P95 and P99 are request latency quantiles (queue wait included),
	// estimated from histogram bucket deltas.
	P50, P95, P99 time.Duration

	// InFlight is the mean number of requests holding a worker slot, per pod.
	InFlight float64
	// QueueLength is the mean number of requests waiting, per pod.
	QueueLength float64
	// WorkerLimit is the worker limit the pods ran with (per pod).
	WorkerLimit int
	// Utilization is InFlight / WorkerLimit, from 0 to 1.
	Utilization float64

	// PoolMaxConns is the pool size the pods ran with (per pod).
	PoolMaxConns int
	// PoolAcquired is the mean number of connections in use, per pod.
	PoolAcquired float64
	// PoolAcquireWait is the mean wait for a connection per acquire.
	PoolAcquireWait time.Duration
	// PoolEmptyAcquireRate is acquires per second that found no idle
	// connection and had to wait or dial, all pods.
	PoolEmptyAcquireRate float64
	// Pools counts the ready pods by the request pool each reported at
	// the window's end (pool size → pods); nil when not known. While a
	// pool cut rolls out it tells the pods that switched, whose room under
	// the connection budget new pods may use, from those that have not.
	Pools map[int32]int32

	// CacheHitRatio is hits / (hits + misses), from 0 to 1; NaN-free: 0
	// when there were no lookups.
	CacheHitRatio float64
	// CacheLookupRate is cache lookups per second, all pods.
	CacheLookupRate float64
	// CacheEvictionRate is entries evicted for space per second, all pods.
	CacheEvictionRate float64
	// CacheEntries is the mean number of cached entries, per pod.
	CacheEntries float64

	// CPUCores is the mean CPU use of a pod, in cores.
	CPUCores float64

	// Sufficient is false when the window must not be acted on; Reason says why.
	Sufficient bool
	Reason     string
}

// Input is everything one decision depends on.
type Input struct {
	// Now is the time of the decision.
	Now time.Time
	// Tuning is the spec's tuning section, with defaults applied.
	Tuning pacerv1.TuningSpec
	// MaxTotalConnections is the database's connection budget across all
	// pods; 0 means none was set.
	MaxTotalConnections int32
	// Current are the settings in effect.
	Current pacerv1.Settings
	// Window is the latest observation.
	Window Window
	// History holds recent decisions, newest first, as kept in status.
	History []pacerv1.Decision
	// Recent holds recent windows, newest first, not including Window, for
	// the stable window, the stabilization windows and for judging whether
	// the last change helped. It may be empty; it should reach back at least
	// max(stabilization.scaleDown, 60s) so scale-downs can be judged.
	Recent []Window
	// Rollout is what the pods may still hold of earlier settings while
	// the last change rolls out; zero when every pod runs Current.
	Rollout Rollout
	// Staged are the settings an earlier decision wanted once the rollout
	// lets them fit (Decision.Staged); nil when nothing waits. While the
	// window cannot be judged, the replicas still grow toward them as far
	// as the pods seen switching make room.
	Staged *pacerv1.Settings
	// PodCPU is the CPU a pod may use, in cores (its CPU limit, else its
	// request); 0 when unknown. When known, replicas also follow CPU use and
	// workers are cut only when CPU is saturated.
	PodCPU float64
}

// Decision is the outcome of one call to Decide.
type Decision struct {
	// Settings are the settings to run with; equal to Input.Current when
	// nothing changes.
	Settings pacerv1.Settings
	// Changes lists each setting that differs from Input.Current, with a
	// reason a person can check against the metrics.
	Changes []pacerv1.Change
	// Summary says in one line what the tuner is doing (for the Tuned
	// condition), including why it holds when Changes is empty.
	Summary string
	// DatabaseBound says, with the figures, that the database limits the
	// service: the objective needs more connections than the pool's bound
	// or the connection budget allows; "" otherwise.
	DatabaseBound string
	// Limited says, with the figures, that the objective is missed and a
	// bound holds back the setting that would meet it (as the HPA's
	// ScalingLimited); "" otherwise.
	Limited string
	// Staged are the settings the decision wants once the rollout in
	// flight lets them fit the connection budget (the replicas it could
	// not add yet); equal to Settings when nothing waits. The loop keeps
	// them and adds the pods as the running ones switch pools.
	Staged pacerv1.Settings
	// Urgent says the changes must not wait for the interval: they answer
	// the objective missed with a resource queueing or a panic, revert a
	// change that made p99 worse, or keep the bounds and the budget.
	Urgent bool
}

// Rollout is the most replicas and the biggest pool the pods may hold
// while a change rolls out: running pods keep their pool until the kubelet
// delivers the new config (up to a minute), and removed pods keep their
// connections until they terminate. Zero fields mean "as Current".
type Rollout struct {
	Replicas, PoolMaxConns int32
	// Terminating counts pods being deleted that may still hold their
	// connections (a long grace period), on top of the replicas.
	Terminating int32
	// Switched counts the ready pods seen, after the last change of
	// replicas or pool, running each request pool (pool size → pods):
	// such a pod holds at most the larger of that pool and the one in
	// effect. Pods not counted here may hold the old pool.
	Switched map[int32]int32
	// Fresh counts the pods added since the pool in effect was written, in
	// later passes: they started on it (a kubelet mounts a pod's ConfigMap
	// as the pod starts). FreshPool says pods added now start on it too:
	// it was put in effect by the last Step or before, so its ConfigMap
	// has been rendered (a pass renders the ConfigMap before the
	// Deployment).
	Fresh     int32
	FreshPool bool
}

// underway says whether a change may still be rolling out: the pods may
// hold replicas or a pool the settings in effect replaced.
func (r Rollout) underway() bool { return r.Replicas > 0 || r.PoolMaxConns > 0 }
