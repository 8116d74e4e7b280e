package tuning

import "time"

// Every constant of the tuner is here, each with why it has its value.
// Times are durations (seconds or more), never counts of windows, so the
// tuner behaves alike at every spec.tuning.interval.

// Defaults used when the spec leaves a field empty (the API server applies
// the same defaults; these keep Decide total on unvalidated input).
const (
	defaultObjective = 100 * time.Millisecond
	defaultTarget    = 70
	defaultInterval  = 30 * time.Second
	defaultScaleDown = 5 * time.Minute
)

// The observation cadence.
const (
	// panicHorizon is the longest window the pods are observed over: a
	// longer interval is split into equal windows of at most this. A need
	// that cannot wait for the interval (the objective missed with a
	// resource queueing, or demand panicFactor times what the ready pods
	// carry) is acted on at the first window that shows it; every other
	// change waits for the interval. Knative panics on a 6 s window read
	// every 2 s; 10 s keeps a window's p99 over enough requests and the
	// scrape load at one per pod per 10 s, whatever the interval.
	panicHorizon = 10 * time.Second
)

// The demand estimate.
const (
	// stableWindow is what demand is averaged over (Knative's default
	// stable window); at longer intervals, one interval.
	stableWindow = 60 * time.Second
	// trendWindow is what a rising load's slope is fitted over.
	trendWindow = 3 * time.Minute
	// panicFactor: a latest demand this many times what the ready pods
	// can carry at the target is an emergency (Knative's 200%), met in
	// one step.
	panicFactor = 2.0
	// trendSignificance: a slope counts when its rise over trendWindow
	// is this many standard errors (about 1 in 40 by chance).
	trendSignificance = 2.0
)

// The capacity model.
const (
	// fitWindow is how far back the model's costs (CPU per request, query
	// time) are fitted, and fitDecay how fast an older window's weight falls.
	fitWindow = 5 * time.Minute
	fitDecay  = 2 * time.Minute
	// cpuLoadSpread: the fitted windows' loads per pod must spread by this
	// share of their mean (relative standard deviation) before a pod's
	// CPU is split into a fixed part and a per-request part; closer
	// loads cannot tell them apart and the cost is taken as proportional.
	cpuLoadSpread = 0.2
	// negligibleCores: a fixed CPU share under this is the rounding of a
	// proportional fit (it came out at 2e-16 cores), not what a pod uses
	// at any load, and a reason leaves it out.
	negligibleCores = 0.005
	// knee is how far back a pod without a CPU limit remembers the
	// highest CPU it was seen to saturate at: a property of the pod and
	// its node, not of the load.
	knee = 30 * time.Minute
	// saturatedInflation: CPU time per request this many times its least
	// means the CPU queues: about 50% busy on one core, 70% on two, 80%
	// on four (M/M/k).
	saturatedInflation = 2.0
	// unprovenBusy is how busy a pod without a CPU limit, never seen
	// queueing for its CPU, counts as at the most CPU it used.
	unprovenBusy = 0.5
	// cpuSaturated is the CPU use (of the capacity) at which a pod counts
	// as saturated.
	cpuSaturated = 0.9
	// fullShare is the share of a worker limit or a pool in use at which
	// it counts as full: it, not what feeds it, holds requests back.
	fullShare = 0.9
	// tolerance is the least relative change worth acting on; the fit's
	// own spread widens it.
	tolerance = 0.10
)

// What a violated objective teaches: a window that missed the objective
// while a pod resource queued at a mean utilization under the target says
// the load is burstier than the mean shows. The target for that resource
// falls to violationBackoff times what failed, never under minTarget, and
// returns to the spec's over violationMemory.
const (
	violationBackoff = 0.85
	minTarget        = 0.3
	// violationMemory is twice the default scale-down window: long enough
	// for a burst that recurs every few minutes to find the lowered target
	// still there, short enough that one incident is forgotten.
	violationMemory = 10 * time.Minute
)

// Workers, pool and cache: each change of these is a config rollout that
// leaves the windows untrusted until every pod runs it, so they move only
// when the model says they are far off.
const (
	// workerHeadroom: workers are this many times what the planned load
	// keeps in flight.
	workerHeadroom = 2.0
	// slack and room: a worker limit or a pool more than slack times what
	// the busiest recent load needs is cut to room times that need. The
	// gap between them is the hysteresis of settings whose every change
	// is a rollout: a pool cut to its exact need comes back up at the
	// next slow query.
	slack = 2.0
	room  = 1.5
	// poolWaitBudget: a pool carries the queries of which no more than 1%
	// wait longer than this share of the objective for a connection
	// (Erlang C): a 2-connection pool of 10 ms queries carries 1.2
	// Erlangs at a 100 ms objective, a 16-connection one 14.
	poolWaitBudget = 0.5
	// poolStaffing is the square-root staffing rule's β: a pool of
	// a + β√a + 1 connections for a Erlangs of queries rarely makes one wait.
	poolStaffing = 2.0
	// poolWaitShare: a mean acquire wait over this share of the objective
	// (at least poolWaitFloor) means the pool is too small.
	poolWaitShare = 0.02
	poolWaitFloor = time.Millisecond
	// Cache: evictions on more than cacheEvictionShare of lookups with
	// misses left mean too small; a hit ratio under cacheHostileHit, or a
	// growth that gained less than cacheMinGain, means keys do not repeat.
	cacheEvictionShare = 0.10
	cacheHostileHit    = 0.05
	cacheMinGain       = 0.02
	cacheFullHit       = 0.98
	cacheIdleEvictions = 0.005
	cacheIdleShare     = 0.25
)

// Staleness and reverts.
const (
	// staleAfter is how many intervals old the latest window may be: the
	// observer makes one per interval.
	staleAfter = 2
	// revertWithin: a change is judged by the first trusted window after
	// it, which comes within a config rollout (about a minute) and an
	// interval.
	revertWithin = 2 * time.Minute
	// revertWorseFactor and revertLoadDrift: p99 this much worse at a
	// request rate within this share of the one before is the change's doing.
	revertWorseFactor = 1.25
	revertLoadDrift   = 0.05
	// minLatencyRequests is the fewest requests served in a window for its
	// quantiles to count.
	minLatencyRequests = 50
	// nearObjective: a p99 this share of the objective counts as near it.
	nearObjective = 0.8
)
