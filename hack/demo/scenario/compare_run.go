package scenario

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// CompareOptions configure `make demo-compare`.
type CompareOptions struct {
	Cluster ClusterOptions
	// AdminDSN reaches a PostgreSQL role that may create databases.
	AdminDSN string
	// DatabasePrefix names each run's database: <prefix>_<run>.
	DatabasePrefix string
	// Shapes are the loads, one repetition of every run each, in order;
	// Seed makes their requests the same in every run.
	Shapes []CompareShape
	Seed   uint64
	// ReportDir receives the report; Out the live tables.
	ReportDir  string
	Out        io.Writer
	TableEvery time.Duration
	Progress   bool
	// Warmup is each run's unmeasured warm-up (DriveOptions.Warmup).
	Warmup time.Duration
	// Interval, when set (DEMO_INTERVAL), is Pacer's tuning interval
	// instead of tunedservice.yaml's.
	Interval time.Duration
}

// CompareShape is one load of a comparison: its name (the same name for
// repetitions of one shape) and its phases, in req/s or in multiples of
// capacity.
type CompareShape struct {
	Name   string
	Phases []Phase
}

// HPA per-pod settings: an HPA on CPU sees only CPU, so a user sizes the
// pod for CPU to run out first. The demo's 4 workers run out first (at
// 480 req/s a pod had its 4 workers busy at 0.13 of its 0.2 cores), and
// an HPA would never see the pod as busy; 16 workers and a pool of 4 do
// not bind before the quota, and 4 pods × (4 + 1 health) stay within the
// budget of 24.
const (
	hpaWorkers = 16
	hpaPool    = 4
)

// Variant is the demo's TunedService for one run of the comparison,
// named after it: static with tuning Disabled at the starting settings;
// hpa-start Disabled at the starting settings and hpa Disabled with
// per-pod settings sized for an HPA on CPU (the HPA writes replicas
// through the scale subresource); pacer with tuning Auto from the starting
// settings.
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
	switch {
	case IsHPARun(run):
		b := ts.Spec.Tuning.Bounds.Replicas
		s += fmt.Sprintf("; HPA on CPU at %d%% of request, %d–%d replicas, through the TunedService's scale subresource",
			*ts.Spec.Tuning.Objective.TargetUtilization, b.Min, b.Max)
	case run == RunPacer:
		s += fmt.Sprintf("; tuner within the bounds, every %s", ts.Spec.Tuning.Interval.Duration)
	}
	return s
}

// RunCompare is `make demo-compare`: one dev cluster; on it, when a shape
// is given in multiples of capacity, a probe of one starting pod; then
// for every shape the same load against the four deployments in turn
// (CompareRuns), each with its own fresh database and pods, removed
// before the next starts. One shape writes its comparison in ReportDir;
// several write one folder each (<n>-<shape>) and a campaign (medians and
// spread per run kind, and the targets) in ReportDir. It returns ReportDir.
func RunCompare(ctx context.Context, o CompareOptions) (string, error) {
	if len(o.Shapes) == 0 {
		return "", errors.New("no load shape to compare on")
	}
	base, err := TunedService("default")
	if err != nil {
		return "", err
	}
	WithInterval(base, o.Interval)
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
	var capacity float64
	for _, s := range o.Shapes {
		if PerCapacity(s.Phases) {
			if capacity, err = MeasureCapacity(ctx, cl, Variant(base, RunStatic), o.AdminDSN, o.DatabasePrefix+"_probe", o.Out); err != nil {
				return "", err
			}
			break
		}
	}
	var all []Comparison
	for i, shape := range o.Shapes {
		dir := o.ReportDir
		if len(o.Shapes) > 1 {
			dir = filepath.Join(o.ReportDir, fmt.Sprintf("%d-%s", i+1, shape.Name))
			fmt.Fprintf(o.Out, "\n##### %d of %d: shape %s\n", i+1, len(o.Shapes), shape.Name)
		}
		cmp, err := compareShape(ctx, cl, base, shape, capacity, dir, o)
		if err != nil {
			return "", err
		}
		all = append(all, cmp)
	}
	if len(all) > 1 {
		c := CampaignOf(all)
		if err := writeCampaign(o.ReportDir, c); err != nil {
			return "", err
		}
		fmt.Fprintf(o.Out, "\n%s", CampaignMarkdown(c))
	}
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

// compareShape runs every run kind on one shape, writes its comparison
// (compare.json, compare.md, chart.svg, a folder per run) in dir, and
// returns it.
func compareShape(ctx context.Context, cl *Cluster, base *pacerv1.TunedService, shape CompareShape, capacity float64, dir string, o CompareOptions) (Comparison, error) {
	objective := base.Spec.Tuning.Objective.LatencyP99.Duration
	budget := *base.Spec.Database.MaxTotalConnections
	phases := Sized(shape.Phases, capacity)
	host, _ := os.Hostname()
	cmp := Comparison{
		Date:                 time.Now().UTC().Format(time.RFC3339),
		Machine:              fmt.Sprintf("%s, %d CPUs, %s/%s", host, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH),
		PodLimits:            cl.PodLimits,
		ResourceMetrics:      cl.ResourceMetrics,
		ObjectiveP99Ms:       ms(objective),
		TargetUtilizationPct: *base.Spec.Tuning.Objective.TargetUtilization,
		ReplicaBounds:        [2]int32{base.Spec.Tuning.Bounds.Replicas.Min, base.Spec.Tuning.Bounds.Replicas.Max},
		Shape:                shape.Name,
		Load:                 describePhases(shape.Phases),
		Seed:                 o.Seed,
		WarmupSeconds:        o.Warmup.Seconds(),
		WindowSeconds:        max(o.TableEvery, time.Second).Seconds(),
		Runs:                 map[string]CompareRun{},
	}
	if PerCapacity(shape.Phases) {
		cmp.CapacityRPS = capacity
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cmp, err
	}
	rows := map[string][]WindowRow{}
	for _, run := range CompareRuns {
		ts := Variant(base, run)
		fmt.Fprintf(o.Out, "\n=== run %s: %s\n", run, Setup(ts, run))
		cr, rec, err := compareOne(ctx, cl, ts, run, phases, o)
		if err != nil {
			return cmp, fmt.Errorf("shape %s, run %s: %w", shape.Name, run, err)
		}
		cmp.Runs[run] = cr
		rows[run] = rec.Rows
		sum := Summarize(rec.Rows, rec.Bins, rec.Samples, rec.Decisions, objective, budget)
		sum.PodLimits = cl.PodLimits
		sum.Load, sum.CapacityRPS = cmp.Load, cmp.CapacityRPS
		if err := WriteReport(filepath.Join(dir, run), sum, rec.Rows, rec.Decisions, rec.Start, objective); err != nil {
			return cmp, err
		}
		fmt.Fprintf(o.Out, "run %s: p99 within %s in %.1f%% of %d windows, %d requests, %d errors, %.0f pod-seconds, %d changes\n",
			run, objective, cr.WindowsInObjectivePct, cr.Windows, cr.Requests, cr.Errors.Total, cr.PodSeconds, cr.Changes)
		if cr.MetricsAPI != "" && cr.MetricsAPI != "available" {
			fmt.Fprintf(o.Out, "WARNING: run %s: the HPA read no CPU figure during the run (resource metrics: %s; the HPA: %s); it could not scale, so this run is a second static run\n",
				run, cl.ResourceMetrics, strings.TrimPrefix(cr.MetricsAPI, "not available: "))
		}
	}
	if err := writeComparison(dir, cmp, rows, objective, budget); err != nil {
		return cmp, err
	}
	fmt.Fprintf(o.Out, "\n%s\n", CompareTable(cmp))
	return cmp, nil
}

// compareOne deploys ts (with an HPA for the hpa run), drives the load,
// collects the changes, and removes the deployment.
func compareOne(ctx context.Context, cl *Cluster, ts *pacerv1.TunedService, run string, phases []Phase, o CompareOptions) (CompareRun, *RunRecord, error) {
	r, err := Deploy(ctx, cl, ts, o.AdminDSN, o.DatabasePrefix+"_"+run, o.Out)
	if err != nil {
		return CompareRun{}, nil, err
	}
	defer func() {
		if err := r.Remove(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintf(o.Out, "WARNING: removing run %s: %v\n", run, err)
		}
	}()
	d := DriveOptions{Phases: phases, Seed: o.Seed, Out: o.Out, TableEvery: o.TableEvery, Progress: o.Progress, Label: run, Warmup: o.Warmup}
	var hpaUID types.UID
	if IsHPARun(run) {
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
		d.HPA, hpaUID = hpa.Name, hpa.UID
	}
	rec, err := Drive(ctx, r, d)
	if err != nil {
		return CompareRun{}, nil, err
	}
	objective := ts.Spec.Tuning.Objective.LatencyP99.Duration
	budget := *ts.Spec.Database.MaxTotalConnections
	var changes []Change
	if IsHPARun(run) {
		events, err := HPAEvents(ctx, cl.Client, ts.Namespace, d.HPA)
		if err != nil {
			return CompareRun{}, nil, fmt.Errorf("list the HPA's events: %w", err)
		}
		changes = HPAChanges(events, d.HPA, hpaUID, *ts.Spec.Replicas, rec.Start)
	} else {
		changes = TunerChanges(rec.Decisions, rec.Start)
	}
	cr := CompareRunOf(Setup(ts, run), rec, changes, objective, budget)
	if IsHPARun(run) {
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
	md := fmt.Sprintf("# demo-compare, %s\n\nMachine: %s. Pod limits: %s. Resource metrics: %s.\nLoad (%s): %s (seed %d)%s.\n\n%s",
		cmp.Date, cmp.Machine, cmp.PodLimits, cmp.ResourceMetrics, cmp.Shape, cmp.Load, cmp.Seed, capacityNote(cmp.CapacityRPS), CompareTable(cmp))
	if err := os.WriteFile(filepath.Join(dir, "compare.md"), []byte(md), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(CompareChart(rows, objective, budget)), 0o644)
}

// capacityNote says what the multiples of capacity meant.
func capacityNote(capacity float64) string {
	if capacity == 0 {
		return ""
	}
	return fmt.Sprintf("; capacity (one pod at the starting settings, closed-loop probe) %.0f req/s", capacity)
}
