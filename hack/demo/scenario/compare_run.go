package scenario

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// CompareOptions configure `make demo-compare`.
type CompareOptions struct {
	Cluster ClusterOptions
	// AdminDSN reaches a PostgreSQL role that may create databases.
	AdminDSN string
	// DatabasePrefix names each run's database: <prefix>_<run>.
	DatabasePrefix string
	// Phases are the load every run gets; Seed makes its requests the same.
	Phases []Phase
	Seed   uint64
	// ReportDir receives the report; Out the live tables.
	ReportDir  string
	Out        io.Writer
	TableEvery time.Duration
	Progress   bool
	// Warmup is each run's unmeasured warm-up (DriveOptions.Warmup).
	Warmup time.Duration
}

// HPA per-pod settings: an HPA on CPU sees only CPU, so a user sizes the
// pod for CPU to run out first. The demo's 4 workers run out first (at
// 480 req/s a pod had its 4 workers busy at 0.13 of its 0.2 cores), and
// an HPA would never see the pod as busy; 16 workers and a pool of 4 do
// not bind before the quota, and 4 pods × 4 stay within the budget of 24.
const (
	hpaWorkers = 16
	hpaPool    = 4
)

// Variant is the demo's TunedService for one run of the comparison,
// named after it: static with tuning Disabled at the starting settings;
// hpa Disabled (the HPA writes replicas through the scale subresource)
// with per-pod settings sized for an HPA on CPU; pacer with tuning Auto
// from the starting settings.
func Variant(base *pacerv1.TunedService, run string) *pacerv1.TunedService {
	ts := base.DeepCopy()
	ts.Name = run
	ts.Spec.Database.URLSecretRef.Name = run + "-db"
	switch run {
	case RunPacer:
		ts.Spec.Tuning.Mode = pacerv1.TuningAuto
	case RunHPA:
		ts.Spec.Tuning.Mode = pacerv1.TuningDisabled
		ts.Spec.Workers.MaxInFlight = hpaWorkers
		ts.Spec.Database.Pool.MaxConns = hpaPool
	default:
		ts.Spec.Tuning.Mode = pacerv1.TuningDisabled
	}
	return ts
}

// Setup describes a run's deployment for the report.
func Setup(ts *pacerv1.TunedService, run string) string {
	s := fmt.Sprintf("tuning %s; %d replica(s), %d workers, pool %d",
		ts.Spec.Tuning.Mode, *ts.Spec.Replicas, ts.Spec.Workers.MaxInFlight, ts.Spec.Database.Pool.MaxConns)
	switch run {
	case RunHPA:
		b := ts.Spec.Tuning.Bounds.Replicas
		s += fmt.Sprintf("; HPA on CPU at %d%% of request, %d–%d replicas, through the TunedService's scale subresource",
			*ts.Spec.Tuning.Objective.TargetUtilization, b.Min, b.Max)
	case RunPacer:
		s += "; tuner within the bounds"
	}
	return s
}

// RunCompare is `make demo-compare`: one dev cluster, and on it the same
// load against three deployments in turn (static, hpa, pacer), each with
// its own fresh database and pods, removed before the next starts. It
// writes one report folder and returns it.
func RunCompare(ctx context.Context, o CompareOptions) (string, error) {
	base, err := TunedService("default")
	if err != nil {
		return "", err
	}
	objective := base.Spec.Tuning.Objective.LatencyP99.Duration
	budget := *base.Spec.Database.MaxTotalConnections
	if err := os.MkdirAll(o.ReportDir, 0o755); err != nil {
		return "", err
	}
	fmt.Fprintln(o.Out, "starting the dev cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, node agent, manager)")
	cl, err := StartCluster(ctx, o.Cluster)
	if err != nil {
		return "", err
	}
	defer cl.Stop()
	fmt.Fprintln(o.Out, "kubeconfig:", cl.Kubeconfig)
	fmt.Fprintln(o.Out, "pod limits:", cl.PodLimits)
	fmt.Fprintln(o.Out, "resource metrics:", cl.ResourceMetrics)
	host, _ := os.Hostname()
	cmp := Comparison{
		Date:                 time.Now().UTC().Format(time.RFC3339),
		Machine:              fmt.Sprintf("%s, %d CPUs, %s/%s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		PodLimits:            cl.PodLimits,
		ResourceMetrics:      cl.ResourceMetrics,
		ObjectiveP99Ms:       ms(objective),
		TargetUtilizationPct: *base.Spec.Tuning.Objective.TargetUtilization,
		ReplicaBounds:        [2]int32{base.Spec.Tuning.Bounds.Replicas.Min, base.Spec.Tuning.Bounds.Replicas.Max},
		Load:                 describePhases(o.Phases),
		Seed:                 o.Seed,
		WarmupSeconds:        o.Warmup.Seconds(),
		WindowSeconds:        max(o.TableEvery, time.Second).Seconds(),
		Runs:                 map[string]CompareRun{},
	}
	rows := map[string][]WindowRow{}
	for _, run := range CompareRuns {
		ts := Variant(base, run)
		fmt.Fprintf(o.Out, "\n=== run %s: %s\n", run, Setup(ts, run))
		cr, rec, err := compareOne(ctx, cl, ts, run, o)
		if err != nil {
			return "", fmt.Errorf("run %s: %w", run, err)
		}
		cmp.Runs[run] = cr
		rows[run] = rec.Rows
		sum := Summarize(rec.Rows, rec.Bins, rec.Samples, rec.Decisions, objective, budget)
		sum.PodLimits = cl.PodLimits
		if err := WriteReport(filepath.Join(o.ReportDir, run), sum, rec.Rows, rec.Decisions, rec.Start, objective); err != nil {
			return "", err
		}
		fmt.Fprintf(o.Out, "run %s: p99 within %s in %.1f%% of %d windows, %d requests, %d errors, %.0f pod-seconds, %d changes\n",
			run, objective, cr.WindowsInObjectivePct, cr.Windows, cr.Requests, cr.Errors.Total, cr.PodSeconds, cr.Changes)
		if cr.MetricsAPI != "" && cr.MetricsAPI != "available" {
			fmt.Fprintf(o.Out, "WARNING: run %s: the HPA read no CPU figure during the run (resource metrics: %s; the HPA: %s); it could not scale, so this run is a second static run\n",
				run, cl.ResourceMetrics, strings.TrimPrefix(cr.MetricsAPI, "not available: "))
		}
	}
	if err := writeComparison(o.ReportDir, cmp, rows, objective, budget); err != nil {
		return "", err
	}
	fmt.Fprintf(o.Out, "\n%s\n", CompareTable(cmp))
	if !strings.HasPrefix(cl.PodLimits, "enforced") {
		fmt.Fprintf(o.Out, "WARNING: pod limits were not enforced (%s): a replica added no capacity, so the comparison means little\n", cl.PodLimits)
	}
	fmt.Fprintln(o.Out, "stopping the dev cluster")
	dir := cl.Dir()
	cl.Stop()
	if left := Running(dir); len(left) > 0 {
		return "", fmt.Errorf("processes of the dev cluster still running after it stopped: %s", strings.Join(left, "; "))
	}
	return o.ReportDir, nil
}

// compareOne deploys ts (with an HPA for the hpa run), drives the load,
// collects the changes, and removes the deployment.
func compareOne(ctx context.Context, cl *Cluster, ts *pacerv1.TunedService, run string, o CompareOptions) (CompareRun, *RunRecord, error) {
	r, err := Deploy(ctx, cl, ts, o.AdminDSN, o.DatabasePrefix+"_"+run, o.Out)
	if err != nil {
		return CompareRun{}, nil, err
	}
	defer func() {
		if err := r.Remove(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(o.Out, "WARNING: removing run %s: %v\n", run, err)
		}
	}()
	d := DriveOptions{Phases: o.Phases, Seed: o.Seed, Out: o.Out, TableEvery: o.TableEvery, Progress: o.Progress, Label: run, Warmup: o.Warmup}
	if run == RunHPA {
		hpa, err := HPA(ts)
		if err != nil {
			return CompareRun{}, nil, err
		}
		if err := cl.Client.Create(ctx, hpa); err != nil {
			return CompareRun{}, nil, fmt.Errorf("create HPA: %w", err)
		}
		defer func() {
			if err := cl.Client.Delete(context.WithoutCancel(ctx), hpa); err != nil && !apierrors.IsNotFound(err) {
				fmt.Fprintf(o.Out, "WARNING: deleting the HPA: %v\n", err)
			}
		}()
		d.HPA = hpa.Name
	}
	rec, err := Drive(ctx, r, d)
	if err != nil {
		return CompareRun{}, nil, err
	}
	objective := ts.Spec.Tuning.Objective.LatencyP99.Duration
	budget := *ts.Spec.Database.MaxTotalConnections
	var changes []Change
	if run == RunHPA {
		events, err := HPAEvents(ctx, cl.Client, ts.Namespace, d.HPA)
		if err != nil {
			return CompareRun{}, nil, fmt.Errorf("list the HPA's events: %w", err)
		}
		changes = HPAChanges(events, d.HPA, *ts.Spec.Replicas, rec.Start)
	} else {
		changes = TunerChanges(rec.Decisions, rec.Start)
	}
	cr := CompareRunOf(Setup(ts, run), rec, changes, objective, budget)
	if run == RunHPA {
		cr.MetricsAPI = MetricsVerdict(rec.Samples)
	}
	return cr, rec, nil
}

// writeComparison writes compare.json, compare.md and chart.svg.
func writeComparison(dir string, cmp Comparison, rows map[string][]WindowRow, objective time.Duration, budget int32) error {
	b, err := json.MarshalIndent(cmp, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "compare.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := fmt.Sprintf("# demo-compare, %s\n\nMachine: %s. Pod limits: %s. Resource metrics: %s.\nLoad: %s (seed %d).\n\n%s",
		cmp.Date, cmp.Machine, cmp.PodLimits, cmp.ResourceMetrics, cmp.Load, cmp.Seed, CompareTable(cmp))
	if err := os.WriteFile(filepath.Join(dir, "compare.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(CompareChart(rows, objective, budget)), 0o644)
}
