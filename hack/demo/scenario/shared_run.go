package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// PrepareShared starts the cluster and deploys the shared-budget
// scenario on it. Close the result when done: it stops the cluster.
func PrepareShared(ctx context.Context, o Options, log io.Writer) (*SharedReady, error) {
	fmt.Fprintln(log, "starting the dev cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, node agent, manager)")
	cl, err := StartCluster(ctx, o.Cluster)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(log, "pod limits:", cl.PodLimits)
	fmt.Fprintln(log, "resource metrics:", cl.ResourceMetrics)
	return DeploySharedBudget(ctx, cl, o.AdminDSN, o.Database, log)
}

// ProbeShared measures what one pod of the steady member answers per
// second on this machine (ProbeCapacity), to size the loads by.
func ProbeShared(ctx context.Context, r *SharedReady) float64 {
	return ProbeCapacity(ctx, r.Endpoints[SharedSteady], r.IDs, 64, 4*time.Second)
}

// SharedHPALoad is the second phase's load, with a real HPA on the
// spiking member: the steady member as before, the spiking one at twice
// capacity for three quarters of d (the HPA's CPU target asks for more
// pods than its allocation holds), then a tenth of it.
func SharedHPALoad(capacity float64, d time.Duration) map[string][]Phase {
	light := float64(int(capacity / 4))
	return map[string][]Phase{
		SharedSteady: {{Name: "steady", Duration: d, RPS: light}},
		SharedSpiky: {
			{Name: "spike", Duration: d * 3 / 4, RPS: float64(int(SpikeLoad * capacity))},
			{Name: "after", Duration: d - d*3/4, RPS: float64(int(capacity / 10))},
		},
	}
}

// RunShared is `make demo-budget`: the two members on one budget under
// SharedLoad for o.Duration, then the same with a real HPA on the spiking
// one for two thirds of it, a live table, and a report. It returns the
// report's folder.
func RunShared(ctx context.Context, o Options) (string, error) {
	r, err := PrepareShared(ctx, o, o.Out)
	if err != nil {
		return "", err
	}
	defer r.Close()
	capacity := ProbeShared(ctx, r)
	if capacity < 30 {
		return "", fmt.Errorf("one pod answered %.0f req/s in a closed-loop probe: too few to size a load by", capacity)
	}
	fmt.Fprintf(o.Out, "one pod answers %.0f req/s on this machine (closed loop, 64 clients, 4 s)\n", capacity)
	rec, err := DriveShared(ctx, r, SharedDriveOptions{Phases: SharedLoad(capacity, o.Duration), Seed: o.Seed, Out: o.Out, TableEvery: o.TableEvery})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(o.Out, "\nwith a HorizontalPodAutoscaler on %s (autoscaling/v2, CPU at the tuner's target, on the TunedService's scale subresource)\n", SharedSpiky)
	hpa, err := r.AddHPA(ctx, SharedSpiky)
	if err != nil {
		return "", err
	}
	hrec, err := DriveShared(ctx, r, SharedDriveOptions{Phases: SharedHPALoad(capacity, o.Duration*2/3), Seed: o.Seed + 10, HPA: hpa, Out: o.Out, TableEvery: o.TableEvery})
	if err != nil {
		return "", err
	}
	dir := o.ReportDir
	if dir == "" {
		dir = filepath.Join("reports", "budget-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := WriteSharedReport(dir, r, capacity, rec, hrec); err != nil {
		return "", err
	}
	st, hst := Stats(rec.Samples, r.Room(), SharedMembers), Stats(hrec.Samples, r.Room(), SharedMembers)
	fmt.Fprintf(o.Out, "\nwithout an HPA: %s\nwith an HPA on %s: %s\n  %s's Autoscaled condition: %s\n",
		st, SharedSpiky, hst, SharedSpiky, SharedAutoscaled(hrec.Samples, SharedSpiky))
	fmt.Fprintln(o.Out, "stopping the dev cluster")
	r.Close()
	return dir, nil
}

// WriteSharedReport writes, for the run without an HPA and the one with
// it (hrec, may be nil): chart.svg / chart-hpa.svg (SharedChart),
// samples.json / samples-hpa.json, table.txt and summary.json.
func WriteSharedReport(dir string, r *SharedReady, capacity float64, rec, hrec *SharedRecord) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	room, most := r.Room(), int(r.Budget.Spec.MaxConnections)
	summary := map[string]any{"podCapacityRPS": int(capacity), "budget": r.Budget.Spec, "podLimits": r.Cluster.PodLimits}
	var table strings.Builder
	for _, run := range []struct {
		suffix, note string
		rec          *SharedRecord
	}{{"", "", rec}, {"-hpa", "a real HPA scales " + SharedSpiky + "'s replicas", hrec}} {
		if run.rec == nil {
			continue
		}
		b, err := json.MarshalIndent(run.rec.Samples, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "samples"+run.suffix+".json"), append(b, '\n'), 0o644); err != nil {
			return err
		}
		svg := SharedChart(run.rec.Samples, SharedMembers, room, most, SpikeSpans(run.rec.Phases[SharedSpiky]), run.note)
		if err := os.WriteFile(filepath.Join(dir, "chart"+run.suffix+".svg"), []byte(svg), 0o644); err != nil {
			return err
		}
		st := Stats(run.rec.Samples, room, SharedMembers)
		summary["run"+run.suffix] = st
		if run.suffix != "" {
			summary["autoscaled"] = SharedAutoscaled(run.rec.Samples, SharedSpiky)
			table.WriteString("\n" + run.note + "\n")
		}
		for m, phases := range run.rec.Phases {
			fmt.Fprintf(&table, "load of %s: %s\n", m, describePhases(phases))
		}
		table.WriteString(SharedTableHeader(room))
		for _, s := range run.rec.Samples {
			table.WriteString(SharedRow(s, "", room))
		}
		table.WriteString(st.String() + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "table.txt"), []byte(table.String()), 0o644); err != nil {
		return err
	}
	b, err := json.MarshalIndent(summary, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "summary.json"), append(b, '\n'), 0o644)
}
