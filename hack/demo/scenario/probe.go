package scenario

import (
	"context"
	"strconv"
	"time"
)

// ProbeCapacity measures what the service's ready pods answer (2xx) per
// second at their current settings, closed loop: clients requests at once
// with the load's mix of reads and writes, each slot refilled as soon as
// its answer came (within the load's 5 ms tick), for d; the first second
// is left out as warm-up. With one ready pod it is that pod's capacity on
// this machine, which a load must be sized by to mean the same on a quiet
// machine and a busy one.
func ProbeCapacity(ctx context.Context, endpoints *Endpoints, ids []int64, clients int, d time.Duration) float64 {
	l := &Load{Endpoints: endpoints, IDs: ids, WriteShare: 0.1, MaxInFlight: clients, Tag: "probe" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	l.Run(ctx, []Phase{{Name: "probe", Duration: d, RPS: maxShapeRate}})
	bins := l.Bins()
	if len(bins) < 2 {
		return 0
	}
	w := Window(bins, 1, len(bins))
	return float64(w.OK) / float64(len(bins)-1)
}
