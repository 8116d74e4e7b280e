package tuning

import (
	"fmt"
	"strings"
)

// databaseBound says, with the figures, when the database and not the
// pods limits the service, or "". That is: the pool is (nearly) all in
// use and requests wait to acquire a connection, the pods' CPU has room,
// and the pool cannot usefully grow: the connection budget is spent, the
// pool is at its bound, or queries slowed (in-service time at least twice
// its recent baseline). Then more replicas, workers or connections would
// only queue on the database, or push it past max_connections.
func (p params) databaseBound(ws []Window, cur int32, replicas int32) string {
	w := ws[0]
	P := int32(w.PoolMaxConns)
	if P <= 0 {
		P = cur
	}
	if P <= 0 || w.PoolAcquired < 0.9*float64(P) || w.PoolAcquireWait <= p.poolWaitLimit() {
		return ""
	}
	if p.podCPU > 0 && w.CPUCores/p.podCPU >= cpuRoom {
		return ""
	}
	var why []string
	if p.budget > 0 && int64(replicas)*int64(P+1) > int64(p.budget) {
		why = append(why, fmt.Sprintf("the connection budget %d is spent (%d replicas × %d)", p.budget, replicas, P))
	}
	if b := p.bounds.PoolMaxConns; b == nil || P >= b.Max {
		why = append(why, "the pool cannot grow")
	}
	t, base := serviceTime(w), t0Baseline(ws)
	if t > 0 && base > 0 && t >= 2*base {
		why = append(why, fmt.Sprintf("in-service time %s is %s its %s baseline", secs(t), times(t/base), secs(base)))
	}
	if len(why) == 0 {
		return ""
	}
	share := ""
	if w.InFlight > 0 {
		share = fmt.Sprintf(", %s of requests in flight hold a connection", pct(min(w.PoolAcquired/w.InFlight, 1)))
	}
	cpu := ""
	if p.podCPU > 0 {
		cpu = fmt.Sprintf(", CPU %s of %s cores", num(w.CPUCores), num(p.podCPU))
	}
	return fmt.Sprintf("database-bound: %s of %d pool connections in use per pod (%s), acquire wait %s (limit %s)%s%s; %s: no replicas, workers or connections added",
		num(w.PoolAcquired), P, pct(w.PoolAcquired/float64(P)), ms(w.PoolAcquireWait), ms(p.poolWaitLimit()), share, cpu, strings.Join(why, ", "))
}

// t0Baseline is the lowest in-service time of the recent windows.
func t0Baseline(ws []Window) float64 {
	base := 0.0
	for i := 0; i < len(ws) && i < baselineWindows; i++ {
		if b := serviceTime(ws[i]); b > 0 && (base == 0 || b < base) {
			base = b
		}
	}
	return base
}

func times(f float64) string { return fmt.Sprintf("%s×", num(f)) }
