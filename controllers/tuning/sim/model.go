// Package sim is a deterministic, seeded simulator of pacer-api pods and
// their database, used to score tuning policies (the operator's own
// tuning.Loop among them) on load traces in simulated time.
//
// It is a fluid model advanced in one-second ticks, not a per-request
// simulation: each tick, every ready pod gets an equal share of the
// arrivals, and queueing formulas (Erlang C for the CPU cores, the worker
// slots and the connection pool; a fluid backlog when arrivals exceed
// capacity) give the in-flight count, the waits and a latency distribution
// (a mixture of shifted exponentials). A window's quantiles come from that
// mixture binned into pacer-api's own histogram buckets, with the sampling
// noise of the finite number of requests in the window. That keeps a
// 35-minute trace to milliseconds.
//
// Pods are tracked one by one where it matters: when each becomes ready,
// when a new config reaches it, and how many database connections it
// holds; pods alike in all three share one tick. PostgreSQL refuses connections past max_connections, and a
// request that needs a new connection then fails.
package sim

import "math"

// Model describes the simulated pods, database and cache.
type Model struct {
	// PodCores is the CPU a pod may use, in cores.
	PodCores float64
	// CPUPerRequest is the CPU time a request needs, in seconds.
	CPUPerRequest float64
	// IdleCores is the CPU a ready pod uses at any load (the Go runtime,
	// metrics scrapes, probes, the pools' health checks), in cores: a
	// request's share of a pod's CPU falls as the pod gets busier. Seen
	// live on the dev cluster: about 200 µs of CPU per request at 776 req/s
	// and 80 µs at 2,500 (docs/demo.md), about 0.13 cores fixed.
	IdleCores float64
	// KneePerCore is the number of requests in flight per core beyond
	// which each more request costs Overhead (a share of CPUPerRequest) to
	// every request: contention, context switches, garbage collection.
	// Overhead 0 turns the term off.
	KneePerCore float64
	Overhead    float64
	// QueryTime is the time a cache miss spends in the database, in
	// seconds, when the database is idle; DBCPUPerQuery of it is database
	// CPU, which queues on DBCores.
	QueryTime     float64
	DBCPUPerQuery float64
	DBCores       float64
	// MaxConnections is the database's max_connections: a pool that wants
	// a connection past it is refused, and the request that needed it fails.
	MaxConnections int
	// ConnIdleTime is how long a pool keeps a connection it no longer
	// needs (pacer-api's database.maxConnIdleTime), in seconds.
	ConnIdleTime float64
	// KeySpace is the number of distinct keys of the normal load, with a
	// Zipf-like popularity (hit ratio ≈ ln(1+entries)/ln(1+KeySpace));
	// HostileKeys the number of a cache-hostile load, uniformly popular.
	KeySpace, HostileKeys float64
	// CacheTTL is how long a cached entry lives, in seconds.
	CacheTTL float64
	// QueueDepth and QueueTimeout bound the worker queue; RequestTimeout
	// bounds a request in flight.
	QueueDepth     int
	QueueTimeout   float64
	RequestTimeout float64
	// PodStartup is the time a new pod takes to become ready, in seconds.
	PodStartup float64
	// TerminationGrace is how long a removed pod keeps its database
	// connections (the preStop sleep and the drain of its requests), in
	// seconds.
	TerminationGrace float64
	// ConfigDelay and ConfigSpread are when a new config reaches a running
	// pod: each pod at its own time, uniformly within
	// [ConfigDelay, ConfigDelay+ConfigSpread] seconds after the decision
	// (the kubelet refreshes a ConfigMap volume on its own sync, up to a
	// minute). New pods start with the newest config.
	ConfigDelay, ConfigSpread float64
	// Noise is the relative standard deviation of the arrivals each second.
	Noise float64
}

// DefaultModel is the model the scorecard uses.
func DefaultModel() Model {
	return Model{
		PodCores:         2,
		CPUPerRequest:    0.003,
		IdleCores:        0.1,
		KneePerCore:      4,
		Overhead:         0.00025, // measured: see ContentionSource
		QueryTime:        0.010,
		DBCPUPerQuery:    0.001,
		DBCores:          8,
		MaxConnections:   80,
		ConnIdleTime:     300,
		KeySpace:         1e6,
		HostileKeys:      1e9,
		CacheTTL:         60,
		QueueDepth:       256,
		QueueTimeout:     0.25,
		RequestTimeout:   5,
		PodStartup:       10,
		TerminationGrace: 15,
		ConfigDelay:      2,
		ConfigSpread:     60,
		Noise:            0.03,
	}
}

// Load is what a trace offers during one second.
type Load struct {
	// Rate is requests per second arriving at the service.
	Rate float64
	// DBSlow multiplies the database's query time (1 normally).
	DBSlow float64
	// Hostile is true when the keys are cache-hostile.
	Hostile bool
}

// podTick is one second of one pod.
type podTick struct {
	served, shed, errors float64 // requests per second
	refused              float64 // of errors: failed for a connection the database refused
	backlog              float64 // requests left waiting at the end
	inFlight, queue      float64
	poolUsed, poolWait   float64 // connections; seconds per acquire
	connDemand           float64 // connections the queries would keep busy (Erlangs)
	emptyAcquires        float64 // per second
	hit, entries, evicts float64
	cpu                  float64 // cores busy
	comps                [7]component
}

// cache returns the hit ratio, the entries held and the evictions per
// second of a cache of size c at lookup rate lambda. With a TTL, a cache
// holds at most what its misses insert within one TTL, so a bigger cache
// only helps while it is full.
func (m Model) cache(c, lambda float64, hostile bool) (hit, entries, evicts float64) {
	if c <= 0 || lambda <= 0 {
		return 0, 0, 0
	}
	f := func(e float64) float64 {
		if hostile {
			return math.Min(1, e/m.HostileKeys)
		}
		return math.Log1p(e) / math.Log1p(m.KeySpace)
	}
	// Bisect the fixed point e = min(c, misses per TTL at hit ratio f(e)).
	lo, hi := 0.0, c
	for range 24 {
		e := (lo + hi) / 2
		if math.Min(c, lambda*(1-f(e))*m.CacheTTL) > e {
			lo = e
		} else {
			hi = e
		}
	}
	e := (lo + hi) / 2
	hit = f(e)
	miss := lambda * (1 - hit)
	if miss*m.CacheTTL >= c {
		evicts = miss - c/m.CacheTTL
	}
	return hit, e, evicts
}

// tick advances one pod by one second: lambda requests per second arrive
// at it, with backlog requests still waiting from before; dbUtil is the
// database's CPU utilization;
// hit, entries and evicts come from cache. peff is the connections the pod
// may use; when refusing, it holds fewer than its pool allows and the
// database refuses more, so a cache miss that finds them all busy fails.
func (m Model) tick(lambda, backlog float64, w, peff int, refusing bool, hit, entries, evicts float64, load Load, dbUtil float64) podTick {
	var t podTick
	t.hit, t.entries, t.evicts = hit, entries, evicts
	miss := 1 - hit
	slow := math.Max(load.DBSlow, 1)
	q := m.QueryTime*slow - m.DBCPUPerQuery + m.DBCPUPerQuery/(1-math.Min(dbUtil, 0.95))
	if refusing && peff == 0 {
		// Every cache miss fails at once; hits are served.
		return m.refusedTick(lambda, backlog, w, hit, entries, evicts, load, dbUtil)
	}
	peff = max(peff, 1)
	cores := m.PodCores - m.IdleCores // what the requests get
	W := float64(w)

	// Fixed point of the in-flight count n (which sets the CPU overhead).
	n := math.Min(W, lambda*(m.CPUPerRequest+miss*q)+backlog)
	var s, wC, wP, wW, pC, pP, pW, T, X, aP float64
	for range 8 {
		prev := n
		s = m.CPUPerRequest * (1 + m.Overhead*math.Max(0, n-m.KneePerCore*cores))
		X = cores / s
		if miss > 0 {
			X = math.Min(X, float64(peff)/(miss*q))
		}
		lam := math.Min(lambda, 0.97*X) // the excess is the backlog's
		var r float64
		pC, r = erlangC(int(math.Ceil(cores)), lam*s*math.Ceil(cores)/cores, s)
		// At most W requests share the cores, and at most W wait for
		// peff connections: the waits cannot exceed what that allows.
		wC = math.Min(safeDiv(pC, r), math.Max(0, W/cores-1)*s)
		aP = lam * miss * q
		pP, r = erlangC(peff, aP, q)
		wP = math.Min(safeDiv(pP, r), math.Max(0, W-float64(peff))*q/float64(peff))
		T = s + wC + miss*(q+wP)
		// W slots carry at most W requests per in-service time without
		// CPU waits (the asymptotic bound of a closed network): waiting
		// for the CPU is the consequence of more slots, not a limit.
		X = math.Min(X, W/(s+miss*(q+wP)))
		lam = math.Min(lambda, 0.97*X)
		pW, r = erlangC(w, math.Min(lam*T, 0.97*W), T)
		wW = safeDiv(pW, r)
		n = math.Min(W, lam*T+backlog)
		if math.Abs(n-prev) < 0.01 {
			break
		}
	}

	// Fluid backlog: arrivals beyond capacity wait; beyond the queue's
	// depth or timeout they are shed with 503.
	t.served = math.Min(lambda+backlog, X)
	b := backlog + lambda - t.served
	inWorkers := 0.0
	if X < W/(s+miss*(q+wP)) { // the bottleneck is behind the worker slots: waiting requests hold them
		inWorkers = math.Min(b, math.Max(0, W-math.Min(lambda, X)*T))
	}
	queued := b - inWorkers
	if maxQ := math.Min(float64(m.QueueDepth), X*m.QueueTimeout); queued > maxQ {
		t.shed = queued - maxQ
		queued = maxQ
	}
	if maxIn := X * m.RequestTimeout; inWorkers > maxIn {
		t.errors = inWorkers - maxIn
		inWorkers = maxIn
	}
	t.backlog = queued + inWorkers
	wait := t.backlog / X

	t.inFlight = math.Min(W, math.Min(lambda, X)*T+inWorkers)
	t.queue = math.Min(lambda, X)*wW + queued
	t.poolUsed = math.Min(aP, float64(peff))
	t.connDemand = (lambda + backlog) * miss * q
	t.poolWait = wP
	if miss > 0 && math.Abs(X-float64(peff)/(miss*q)) < 1e-9 {
		t.poolWait += wait // the backlog waits for connections
	}
	t.emptyAcquires = t.served * miss * pP
	t.cpu = m.IdleCores + math.Min(cores, t.served*s)

	wHit := t.served * hit
	wMiss := t.served * miss
	p1 := 1 - (1-pC)*(1-pW)
	e1 := wC + wW
	p2 := 1 - (1-pC)*(1-pW)*(1-pP)
	e2 := wC + wW + wP
	sh := 0.5*s + wait
	shm := sh + 0.7*q
	// Refused and failed requests are in the histogram too: a shed one
	// after its queue timeout (or at once when the queue is full), a
	// timed-out one after the request timeout, a refused connection fast.
	shedAfter := m.QueueTimeout
	if float64(m.QueueDepth) < X*m.QueueTimeout {
		shedAfter = 0.0002
	}
	t.comps = [7]component{
		{weight: wHit * (1 - p1), shift: sh, a: 0.5 * s},
		{weight: wHit * p1, shift: sh, a: 0.5 * s, b: safeDiv(e1, p1)},
		{weight: wMiss * (1 - p2), shift: shm, a: 0.5*s + 0.3*q},
		{weight: wMiss * p2, shift: shm, a: 0.5*s + 0.3*q, b: safeDiv(e2, p2)},
		{weight: t.shed, shift: shedAfter},
		{weight: t.errors, shift: m.RequestTimeout},
		{}, // refused connections, below
	}
	if refusing {
		// A miss that finds every held connection busy asks for a new
		// one, is refused, and fails (a 5xx) instead of waiting.
		fail := wMiss * pP
		t.errors += fail
		t.refused = fail
		t.served -= fail
		t.comps[3].weight = math.Max(0, t.comps[3].weight-fail)
		t.comps[6] = component{weight: fail, shift: 0.001}
	}
	return t
}

// refusedTick is a second of a pod that holds no connection while the
// database refuses new ones: hits are served, misses fail.
func (m Model) refusedTick(lambda, backlog float64, w int, hit, entries, evicts float64, load Load, dbUtil float64) podTick {
	t := m.tick(lambda*hit, backlog*hit, w, 1, false, 1, entries, evicts, load, dbUtil)
	fail := (lambda + backlog) * (1 - hit)
	t.errors += fail
	t.refused = fail
	t.comps[6] = component{weight: fail, shift: 0.001}
	t.hit = hit
	t.connDemand = (lambda + backlog) * (1 - hit) * m.QueryTime * math.Max(load.DBSlow, 1)
	return t
}

func safeDiv(a, b float64) float64 {
	if b == 0 || math.IsInf(b, 0) {
		return 0
	}
	return a / b
}

// ContentionSource says where DefaultModel's contention figures come from.
const ContentionSource = "Calibrated from pacer-api on this project's 2-core machine (2026-12-02, `hack/bench-service.sh -only \"GET by id\" -conns N -duration 6s -rounds 2` with maxInFlight 512, so every connection's request is in flight; other work ran, load average about 27): server CPU per uncached read 293, 147, 146 and 151 µs at 2, 8, 32 and 128 connections (cached: 103, 84, 55, 71 µs). From 8 to 128 in flight the uncached cost rises about 3%, which is 0.025% per request in flight beyond 4 per core; the cached figures move more than that from noise alone. Below the knee the cost per request falls as the pod gets busier (idle wake-ups), which the model leaves out. The earlier default, 1% per request, was 40 times the measured figure."
