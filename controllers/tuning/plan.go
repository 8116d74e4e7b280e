package tuning

import (
	"fmt"
	"math"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// plan is one choice of replicas, workers and pool for a demand: the
// fewest pods (the cost) whose CPU and pool the model says stay under
// their targets, each pod's pool sized for its share of the queries,
// inside the bounds and the connection budget.
type plan struct {
	demand                  float64
	replicas, workers, pool int32
	// cpuUse and poolUse are the utilizations the model predicts.
	cpuUse, poolUse float64
	// limited says what keeps the plan from meeting the targets ("" when
	// it meets them); the plan is then the most capacity that fits.
	limited string
	// databaseBound is true when what binds is the pool: its bound or the
	// connection budget.
	databaseBound bool
}

// plan chooses the settings for demand (requests per second, all pods).
// Settings the spec does not tune stay at cur.
func (p params) plan(m model, demand float64, cur pacerv1.Settings) plan {
	lo, hi := cur.Replicas, cur.Replicas
	if b := p.bounds.Replicas; b != nil {
		lo, hi = b.Min, b.Max
	}
	lo = max(lo, 1)
	var best, stay plan
	bestCap, stayCap := -1.0, -1.0
	for r := lo; r <= max(hi, lo); r++ {
		pl, capacity := p.planAt(m, demand, r, cur)
		if pl.limited == "" {
			return pl
		}
		// Out of reach at the targets: the most capacity short of
		// saturation. At the targets, the pool's wait criterion is the
		// stricter one, and it would trade a pool a little past its wait
		// budget for a CPU far past saturation.
		if capacity >= 0 {
			capacity = p.ceiling(m, r, pl)
		}
		if capacity > bestCap*(1+1e-9) {
			best, bestCap = pl, capacity
		}
		if r == cur.Replicas {
			stay, stayCap = pl, capacity
		}
	}
	// Out of reach anyway: moving to the most capacity is worth a
	// rollout only when it is clearly more than the replicas in effect
	// carry; the model's noise would otherwise swap them every window.
	if stayCap > 0 && bestCap <= stayCap*(1+tolerance) {
		best = stay
	}
	if p.bounds.Replicas != nil && m.cpu > 0 && m.cores > 0 {
		switch per := m.podRate(m.cpuTarget); {
		case per <= 0:
			// No count of pods meets the target: what a pod uses at
			// any load is over it already.
			best.limited = fmt.Sprintf("a pod uses %s of its %s cores at any load, over the %s CPU target before any request", num(m.base), num(m.cores), pct(m.cpuTarget))
			best.databaseBound = false
		default:
			if n := ceil32(demand / per); n > hi {
				best.limited = fmt.Sprintf("the CPU needs %d pods; tuning.bounds.replicas.max is %d", n, hi)
				best.databaseBound = false
			}
		}
	}
	return best
}

// ceiling is the demand r pods of plan pl carry short of saturation:
// their CPU cpuSaturated busy, their connections cpuSaturated busy.
func (p params) ceiling(m model, r int32, pl plan) float64 {
	c := math.Inf(1)
	if per := m.podRate(cpuSaturated); m.cpu > 0 && m.cores > 0 {
		c = float64(r) * per
	}
	if m.query > 0 && m.miss > 0 && pl.pool > 0 {
		c = min(c, float64(r)*float64(pl.pool)*cpuSaturated/(m.miss*m.query))
	}
	return c
}

// planAt is the plan with r replicas, and the demand r pods can carry at
// the targets with the pool it allows.
func (p params) planAt(m model, demand float64, r int32, cur pacerv1.Settings) (plan, float64) {
	pl := plan{demand: demand, replicas: r, workers: cur.MaxInFlight, pool: cur.PoolMaxConns}
	x := demand / float64(r)
	capacity := math.Inf(1)
	var why []string
	if m.cpu > 0 && m.cores > 0 {
		pl.cpuUse = m.cpuAt(x) / m.cores
		capacity = float64(r) * m.podRate(m.cpuTarget)
		if pl.cpuUse > m.cpuTarget {
			why = append(why, fmt.Sprintf("CPU %s busy (target %s)", pct(pl.cpuUse), pct(m.cpuTarget)))
		}
	}
	erlangs := x * m.miss * m.query
	if b := p.bounds.PoolMaxConns; b != nil && m.query > 0 {
		most, bound := b.Max, "tuning.bounds.poolMaxConns.max"
		if p.budget > 0 {
			if fit := int32(int64(p.budget)/int64(r)) - HealthPoolConns; fit < most {
				most, bound = fit, fmt.Sprintf("the connection budget %d over %d pods", p.budget, r)
			}
		}
		if most < b.Min {
			return plan{replicas: r, limited: fmt.Sprintf("%d pods at poolMaxConns %d exceed the connection budget %d", r, b.Min, p.budget)}, -1
		}
		// The staffing rule's pool where the budget allows it; the pool
		// is short only when it cannot carry the queries at all.
		pl.pool = min(max(poolFor(erlangs, m.poolTarget), b.Min), most)
		if p.poolCarries(most, m) < erlangs {
			why = append(why, fmt.Sprintf("the pool needs more connections per pod than the %d %s allows", most, bound))
			pl.databaseBound = true
		}
	}
	if m.query > 0 && m.miss > 0 && pl.pool > 0 {
		pl.poolUse = erlangs / float64(pl.pool)
		capacity = min(capacity, float64(r)*p.poolCarries(pl.pool, m)/(m.miss*m.query))
	}
	if p.budget > 0 && WorstCaseConnections(r, pl.pool) > int64(p.budget) {
		return plan{replicas: r, limited: fmt.Sprintf("%d pods × %d connections exceed the connection budget %d", r, PodConnections(pl.pool), p.budget)}, -1
	}
	if b := p.bounds.Workers; b != nil {
		pl.workers = clamp(p.workersFor(m, x, pl), b)
	}
	if len(why) > 0 {
		pl.limited = joinNotes(why)
	}
	return pl, capacity
}

// poolCarries is the Erlangs of queries a pool of n connections carries:
// the most for which, by Erlang C (M/M/n with the model's query time), no
// more than 1% of queries wait longer than poolWaitBudget of the
// objective for a connection; scaled down as far as recent violations
// lowered the pool's target.
func (p params) poolCarries(n int32, m model) float64 {
	if n <= 0 || m.query <= 0 {
		return 0
	}
	if a, ok := m.carries[n]; ok {
		return a
	}
	wait := poolWaitBudget * p.objective.Seconds()
	lo, hi := 0.0, float64(n)
	for range 20 {
		a := (lo + hi) / 2
		if erlangCTail(int(n), a, m.query, wait) <= 0.01 {
			lo = a
		} else {
			hi = a
		}
	}
	a := lo * m.poolTarget / p.target
	if m.carries != nil {
		m.carries[n] = a
	}
	return a
}

// erlangCTail is the share of arrivals that wait longer than t in an M/M/n
// queue offered a Erlangs with mean service time q: C(n, a)·e^(−(n−a)t/q).
func erlangCTail(n int, a, q, t float64) float64 {
	if a >= float64(n) {
		return 1
	}
	if a <= 0 {
		return 0
	}
	// Erlang B by its recurrence, then C from B.
	b := 1.0
	for k := 1; k <= n; k++ {
		b = a * b / (float64(k) + a*b)
	}
	c := b / (1 - a/float64(n)*(1-b))
	return c * math.Exp(-(float64(n)-a)*t/q)
}

// poolFor is the pool for a Erlangs of queries per pod: square-root
// staffing (a + β√a + 1), and at least what keeps its use under target.
func poolFor(a, target float64) int32 {
	if a <= 0 {
		return 1
	}
	return max(ceil32(a+poolStaffing*math.Sqrt(a)+1), ceil32(a/target))
}

// workersFor is the worker limit for a per-pod rate x: workerHeadroom
// times what Little's law keeps in flight at the in-service time the
// planned CPU use implies (M/M/2's 1/(1−ρ²), as busyAt reads it), and
// never fewer than the pool's connections.
func (p params) workersFor(m model, x float64, pl plan) int32 {
	t := m.miss * m.query
	if m.cpu > 0 {
		rho := min(pl.cpuUse, cpuSaturated)
		t += m.cpu / (1 - rho*rho)
	}
	return max(ceil32(workerHeadroom*x*t), pl.pool, 1)
}

// workersAtCeiling is the worker limit a pod of plan pl needs at the most
// it carries short of saturation (ceiling): the limit is a property of the
// pod, not of the load, so a rise beyond the load it was cut for queues
// at the CPU until new pods are ready instead of being shed. Never under
// the plan's own limit; the plan's limit when the model cannot tell.
func (p params) workersAtCeiling(m model, pl plan) int32 {
	x := p.ceiling(m, 1, pl)
	if math.IsInf(x, 1) || x <= 0 {
		return pl.workers
	}
	at := pl
	if m.cpu > 0 && m.cores > 0 {
		at.cpuUse = cpuSaturated
	}
	return max(pl.workers, p.workersFor(m, x, at))
}

// describe says what a plan predicts, for reasons.
func (pl plan) describe() string {
	s := fmt.Sprintf("%s req/s on %d pods", num(pl.demand), pl.replicas)
	if pl.cpuUse > 0 {
		s += fmt.Sprintf(" runs the CPU %s busy", pct(pl.cpuUse))
	}
	if pl.poolUse > 0 {
		s += fmt.Sprintf(", %d connections each %s busy", pl.pool, pct(pl.poolUse))
	}
	return s
}
