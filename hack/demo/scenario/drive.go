package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// DriveOptions say how to drive load through a deployment.
type DriveOptions struct {
	Phases []Phase
	// Seed makes the request mix (reads or creates, which users) the same
	// from run to run; 0 picks one at random.
	Seed uint64
	// HPA, when set, is the name of a HorizontalPodAutoscaler to sample
	// beside the TunedService.
	HPA string
	// Out receives the live table; TableEvery is its period.
	Out        io.Writer
	TableEvery time.Duration
	// Progress rewrites a progress line in place (for a terminal).
	Progress bool
	// Label prefixes the progress line (the run's name in a comparison).
	Label string
	// Warmup, when set, sends the first phase's starting rate for this
	// long before the measured load, so a cold pod (empty cache, a pool
	// still opening) does not decide the first window.
	Warmup time.Duration
}

// RunRecord is what one run of load saw: the pure parts of the report
// are computed from it.
type RunRecord struct {
	Start     time.Time
	Phases    []Phase
	Rows      []WindowRow
	Bins      []Bin
	Samples   []Sample
	Decisions []pacerv1.Decision
}

// Drive sends the phases' load to r's endpoints, samples the cluster every
// second, prints a table row every TableEvery, and returns the record.
func Drive(ctx context.Context, r *Ready, o DriveOptions) (*RunRecord, error) {
	if PerCapacity(o.Phases) {
		return nil, errors.New("the phases are in multiples of capacity: size them first (Sized)")
	}
	objective := r.TS.Spec.Tuning.Objective.LatencyP99.Duration
	budget := *r.TS.Spec.Database.MaxTotalConnections
	load := &Load{Endpoints: r.Endpoints, IDs: r.IDs, WriteShare: 0.1, MaxInFlight: 256, Seed: o.Seed,
		Tag: strconv.FormatInt(time.Now().UnixNano(), 36)}
	sampler := &Sampler{C: r.Cluster.Client, TS: r.TS, Database: r.database, PG: r.PG, HPA: o.HPA}
	duration := TotalDuration(o.Phases)
	every := max(o.TableEvery, time.Second)

	if o.Warmup > 0 && len(o.Phases) > 0 {
		fmt.Fprintf(o.Out, "warming up: %s at %.0f req/s (not measured)\n", o.Warmup, o.Phases[0].RPS)
		warm := &Load{Endpoints: r.Endpoints, IDs: r.IDs, WriteShare: load.WriteShare, MaxInFlight: load.MaxInFlight,
			Seed: o.Seed + 1, Tag: load.Tag + "w"}
		warm.Run(ctx, []Phase{{Name: "warmup", Duration: o.Warmup, RPS: o.Phases[0].RPS}})
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	loadDone := make(chan struct{})
	go func() { load.Run(ctx, o.Phases); close(loadDone) }()
	fmt.Fprintf(o.Out, "\nload: %s (%.0f%% creates unless said), to the pods' addresses from the Service's EndpointSlices\n\n",
		describePhases(o.Phases), load.WriteShare*100)
	fmt.Fprint(o.Out, TableHeader(objective, budget))

	rec := &RunRecord{Phases: o.Phases}
	sampleTick := time.NewTicker(time.Second)
	defer sampleTick.Stop()
	lastRow := time.Now()
	var latest Sample
	shown := 0 // whole seconds already in a row
	label := ""
	if o.Label != "" {
		label = o.Label + ": "
	}
	for running := true; running; {
		select {
		case <-ctx.Done():
			<-loadDone
			return nil, ctx.Err()
		case <-loadDone:
			running = false
		case <-sampleTick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if s, err := sampler.Take(sctx); err == nil {
			latest = s
			rec.Samples = append(rec.Samples, s)
		}
		cancel()
		if time.Since(lastRow) < every && running {
			continue
		}
		lastRow = time.Now()
		// Whole seconds only: the current second is still filling.
		bins := load.Bins()
		n := len(bins) - 1
		if n <= shown {
			continue // the load ended right after a row: no new second to show
		}
		// Each whole second in exactly one window: a slow sample can
		// stretch a window past TableEvery, never leave seconds out.
		row := Row(float64(n), load.Phase(), Window(bins, shown, n), time.Duration(n-shown)*time.Second, latest)
		shown = n
		rec.Rows = append(rec.Rows, row)
		left := max(duration-time.Since(load.Start()), 0).Round(time.Second)
		if o.Progress {
			fmt.Fprint(o.Out, "\r\033[K")
		}
		fmt.Fprint(o.Out, row.Format(objective))
		if o.Progress && running {
			fmt.Fprintf(o.Out, "  ▶ %sphase %s (%s), %s left", label, load.Phase(), phaseList(o.Phases, load.Phase()), left)
		} else if running {
			fmt.Fprintf(o.Out, "  progress: %sphase %s, %s left\n", label, load.Phase(), left)
		}
	}
	fmt.Fprintln(o.Out)
	rec.Start = load.Start()
	rec.Bins = load.Bins()
	rec.Decisions = CollectDecisions(rec.Samples)
	return rec, nil
}
