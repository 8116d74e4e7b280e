package scenario

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// SharedLoad is each member's load over d, sized by capacity (what one
// pod answers per second on this machine): the steady member at a
// quarter of it throughout (one pod, under the 70% target); the spiking
// one the same for the first 10%, then twice capacity for 45% (two pods
// would run at 100%: the tuner wants more than its fair share holds;
// it takes two tuning intervals or more to get there), then a tenth of
// it for the rest, long enough for the tuner to scale down after its
// scale-down window, so its pods and its room are given back.
func SharedLoad(capacity float64, d time.Duration) map[string][]Phase {
	light := float64(int(capacity / 4))
	return map[string][]Phase{
		SharedSteady: {{Name: "steady", Duration: d, RPS: light}},
		SharedSpiky: {
			{Name: "calm", Duration: d * 10 / 100, RPS: light},
			{Name: "spike", Duration: d * 45 / 100, RPS: float64(int(SpikeLoad * capacity))},
			{Name: "after", Duration: d - d*10/100 - d*45/100, RPS: float64(int(capacity / 10))},
		},
	}
}

// SpikeLoad is the spike, in pods' capacity (ProbeCapacity, closed loop):
// enough that the spiking member wants three pods and room for a fourth,
// more than its fair share; no more, so the two cores still carry the
// load generator, five pods and PostgreSQL (at 2.6× the machine was the
// bottleneck and every member's latency rose with it).
const SpikeLoad = 2.0

// PhaseSummary says what one member's load offered and got in each of
// its phases (requests per second), from its per-second bins.
func PhaseSummary(name string, bins []Bin, phases []Phase) string {
	parts := []string{}
	from := 0
	for _, p := range phases {
		to := min(from+int(p.Duration/time.Second), len(bins))
		if to <= from {
			break
		}
		w := Window(bins, from, to)
		secs := float64(to - from)
		parts = append(parts, fmt.Sprintf("%s: offered %.0f/s, ok %.0f/s, shed %d, failed %d",
			p.Name, float64(w.Offered)/secs, float64(w.OK)/secs, w.R429+w.R503, w.R5xx+w.Other+w.Net+w.NoEndpoint+w.Dropped))
		from = to
	}
	return name + ": " + strings.Join(parts, "; ")
}

// SharedRecord is what a shared-budget run saw.
type SharedRecord struct {
	Start   time.Time
	Phases  map[string][]Phase
	Samples []SharedSample
	Bins    map[string][]Bin
}

// SharedDriveOptions say how to drive a shared-budget run.
type SharedDriveOptions struct {
	Phases map[string][]Phase
	Seed   uint64
	// HPA, when set, names an HPA to sample.
	HPA string
	// Out receives the live table; TableEvery is its period.
	Out        io.Writer
	TableEvery time.Duration
}

// DriveShared sends each member its phases' load at once, samples
// pg_stat_activity and the budget every second until the longest load
// ends, prints a table row every TableEvery, and returns the record.
func DriveShared(ctx context.Context, r *SharedReady, o SharedDriveOptions) (*SharedRecord, error) {
	rec := &SharedRecord{Phases: o.Phases, Bins: map[string][]Bin{}}
	loads := map[string]*Load{}
	done := make(chan struct{}, len(o.Phases))
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	rec.Start = time.Now()
	for i, name := range SharedMembers {
		phases, ok := o.Phases[name]
		if !ok {
			continue
		}
		l := &Load{Endpoints: r.Endpoints[name], IDs: r.IDs, WriteShare: 0.1, MaxInFlight: 256, Seed: o.Seed + uint64(i), Tag: tag + name}
		loads[name] = l
		fmt.Fprintf(o.Out, "load of %s: %s\n", name, describePhases(phases))
		go func() { l.Run(ctx, phases); done <- struct{}{} }()
	}
	sampler := &SharedSampler{R: r, HPA: o.HPA}
	fmt.Fprint(o.Out, "\n"+SharedTableHeader(r.Room()))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	every := max(o.TableEvery, time.Second)
	lastRow := time.Now()
	for left := len(loads); left > 0; {
		select {
		case <-ctx.Done():
			for ; left > 0; left-- {
				<-done
			}
			return nil, ctx.Err()
		case <-done:
			left--
		case <-tick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		s, err := sampler.Take(sctx)
		cancel()
		if s.At.IsZero() || (err != nil && s.Total == 0 && len(s.Open) == 0) {
			continue
		}
		s.Seconds = s.At.Sub(rec.Start).Seconds()
		rec.Samples = append(rec.Samples, s)
		if time.Since(lastRow) >= every || left == 0 {
			lastRow = time.Now()
			phase := ""
			if l := loads[SharedSpiky]; l != nil {
				phase = l.Phase()
			}
			fmt.Fprint(o.Out, SharedRow(s, phase, r.Room()))
		}
	}
	for _, name := range SharedMembers {
		if l := loads[name]; l != nil {
			rec.Bins[name] = l.Bins()
			fmt.Fprintln(o.Out, PhaseSummary(name, rec.Bins[name], o.Phases[name]))
		}
	}
	return rec, nil
}

// SharedTableHeader heads the live table.
func SharedTableHeader(room int) string {
	return fmt.Sprintf("%5s %-6s | %-24s | %-24s | %s\n", "t(s)", "phase",
		"steady open/alloc pods", "spiky open/alloc pods", fmt.Sprintf("total/room %d, free", room))
}

// SharedRow is one line of the live table.
func SharedRow(s SharedSample, phase string, room int) string {
	cell := func(m string) string {
		return fmt.Sprintf("%3d / %3d   %d pods", s.Open[m], s.Allocated[m], s.Pods[m])
	}
	mark := ""
	if s.Total > room {
		mark = "  OVER THE BUDGET"
	}
	hpa := ""
	if s.HPA != nil {
		hpa = "  " + s.HPA.String()
	}
	return fmt.Sprintf("%5.0f %-6s | %-24s | %-24s | %3d / %d, %d free%s%s\n", s.Seconds, phase, cell(SharedSteady), cell(SharedSpiky), s.Total, room, s.Free, mark, hpa)
}
