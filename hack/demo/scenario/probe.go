package scenario

import (
	"context"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// ProbeCapacity measures what the service's ready pods answer (2xx) per
// second at their current settings, closed loop: clients requests at once
// with the load's mix of reads and writes, each client sending its next
// as soon as its answer came, for d; only whole seconds after the first
// count. With one ready pod it is that pod's capacity on this machine,
// which a load must be sized by to mean the same on a quiet machine and a
// busy one.
func ProbeCapacity(ctx context.Context, endpoints *Endpoints, ids []int64, clients int, d time.Duration) float64 {
	l := &Load{Endpoints: endpoints, IDs: ids, WriteShare: 0.1, MaxInFlight: clients, Tag: "probe" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	l.RunClosed(ctx, clients, d)
	bins := l.Bins()
	whole := min(len(bins), int(d/time.Second))
	if whole < 2 {
		return 0
	}
	w := Window(bins, 1, whole)
	return float64(w.OK) / float64(whole-1)
}

// The capacity probe: a warm-up that fills the cache and the pool, then
// the measured part. Its clients keep a starting pod's workers busy with
// a short queue behind them (three requests per worker), short enough
// that none waits out the queue's timeout (a refused request costs CPU
// and is not capacity).
const (
	probeWarmup       = 5 * time.Second
	probeMeasure      = 10 * time.Second
	probeClientsPerWk = 4
	minProbeCapacity  = 10.0 // req/s; below it the machine or the pod is broken
)

// ProbeClients is the probe's concurrency for a pod of workers workers.
func ProbeClients(workers int32) int {
	return min(max(probeClientsPerWk*int(workers), 16), 256)
}

// MeasureCapacity deploys base's starting settings, tuning Disabled, as
// the TunedService "probe" on its own database, probes its one pod
// (ProbeCapacity) and removes it. The result, in req/s, is what a load
// given in multiples of capacity (PerCapacity) is sized by.
func MeasureCapacity(ctx context.Context, cl *Cluster, base *pacerv1.TunedService, adminDSN, database string, out io.Writer) (float64, error) {
	ts := base.DeepCopy()
	ts.Name = "probe"
	ts.Spec.Database.URLSecretRef.Name = "probe-db"
	ts.Spec.Tuning.Mode = pacerv1.TuningDisabled
	one := int32(1)
	ts.Spec.Replicas = &one
	fmt.Fprintf(out, "measuring the capacity of one pod at the starting settings (%d workers, pool %d)\n",
		ts.Spec.Workers.MaxInFlight, ts.Spec.Database.Pool.MaxConns)
	r, err := Deploy(ctx, cl, ts, adminDSN, database, out)
	if err != nil {
		return 0, fmt.Errorf("capacity probe: %w", err)
	}
	defer func() {
		if err := r.Remove(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(out, "WARNING: removing the capacity probe: %v\n", err)
		}
	}()
	clients := ProbeClients(ts.Spec.Workers.MaxInFlight)
	ProbeCapacity(ctx, r.Endpoints, r.IDs, clients, probeWarmup)
	capacity := ProbeCapacity(ctx, r.Endpoints, r.IDs, clients, probeMeasure)
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if capacity < minProbeCapacity {
		return 0, fmt.Errorf("capacity probe: one pod answered %.0f req/s (closed loop, %d clients, %s): too few to size a load by", capacity, clients, probeMeasure)
	}
	capacity = math.Round(capacity)
	fmt.Fprintf(out, "capacity: one pod answered %.0f req/s (closed loop, %d clients, %s after %s of warm-up)\n", capacity, clients, probeMeasure, probeWarmup)
	return capacity, nil
}
