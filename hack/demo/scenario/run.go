package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
)

// Options configure a demo run.
type Options struct {
	Cluster ClusterOptions
	// AdminDSN reaches a PostgreSQL role that may create databases.
	AdminDSN string
	// Database is the database the run (re)creates.
	Database string
	// Duration is the length of the load (all phases).
	Duration time.Duration
	// BaseRPS is the steady load; the step doubles it, the spike is 3.5×.
	BaseRPS float64
	// Phases, when set (DEMO_SHAPE), replace the default phases of
	// Duration and BaseRPS; Duration is then their total.
	Phases []Phase
	// ReportDir receives the report.
	ReportDir string
	// Out receives the live table.
	Out io.Writer
	// TableEvery is the table's period.
	TableEvery time.Duration
	// Progress shows a progress line under the table, rewritten in place
	// (for a terminal); otherwise a progress line follows each row.
	Progress bool
}

// Phases splits d into steady, 2× step, a short spike, and back down.
func Phases(d time.Duration, base float64) []Phase {
	return []Phase{
		{Name: "steady", Duration: d * 25 / 100, RPS: base},
		{Name: "step2x", Duration: d * 40 / 100, RPS: 2 * base},
		{Name: "spike", Duration: d * 10 / 100, RPS: 3.5 * base},
		{Name: "down", Duration: d * 25 / 100, RPS: base},
	}
}

// Ready holds what a prepared run needs.
type Ready struct {
	Cluster   *Cluster
	TS        *pacerv1.TunedService
	Endpoints *Endpoints
	IDs       []int64
	PG        *pgx.Conn
	DSN       string
}

// Prepare starts the cluster, the database, the TunedService, waits for a
// ready endpoint and seeds users. Close the result's cluster when done.
func Prepare(ctx context.Context, o Options, log io.Writer) (*Ready, error) {
	fmt.Fprintln(log, "starting the dev cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, node agent, manager)")
	cl, err := StartCluster(ctx, o.Cluster)
	if err != nil {
		return nil, err
	}
	r := &Ready{Cluster: cl}
	fail := func(err error) (*Ready, error) {
		r.Close()
		return nil, err
	}
	fmt.Fprintln(log, "kubeconfig:", cl.Kubeconfig)
	fmt.Fprintln(log, "pod limits:", cl.PodLimits)
	if r.DSN, err = PrepareDatabase(ctx, o.AdminDSN, o.Database); err != nil {
		return fail(err)
	}
	if r.PG, err = pgx.Connect(ctx, o.AdminDSN); err != nil {
		return fail(err)
	}
	if r.TS, err = TunedService("default"); err != nil {
		return fail(err)
	}
	if err := Apply(ctx, cl.Client, r.TS, r.DSN); err != nil {
		return fail(err)
	}
	fmt.Fprintf(log, "applied TunedService %s (Auto, p99 objective %s, connection budget %d); waiting for a ready pod\n",
		r.TS.Name, r.TS.Spec.Tuning.Objective.LatencyP99.Duration, *r.TS.Spec.Database.MaxTotalConnections)
	r.Endpoints = NewEndpoints(ctx, cl.Client, r.TS.Namespace, r.TS.Name, "http")
	deadline := time.Now().Add(3 * time.Minute)
	for len(r.Endpoints.Addrs()) == 0 {
		if err := podsThatCannotRun(ctx, cl.Client, r.TS); err != nil {
			return fail(err)
		}
		if time.Now().After(deadline) {
			return fail(errors.New("no ready endpoint after 3 minutes; see the dev cluster's logs"))
		}
		select {
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	tag := strconv.FormatInt(time.Now().UnixNano(), 36)
	if r.IDs, err = Seed(ctx, r.Endpoints.Pick(), 400, tag); err != nil {
		return fail(err)
	}
	return r, nil
}

// podsThatCannotRun reports a pod the node agent failed for good (no
// address, an unknown image), with the agent's reason, so the run stops at
// once rather than waiting minutes for a ready endpoint.
func podsThatCannotRun(ctx context.Context, c client.Client, ts *pacerv1.TunedService) error {
	var pods corev1.PodList
	if err := c.List(ctx, &pods, client.InNamespace(ts.Namespace), SelectorLabels(ts)); err != nil {
		return nil //nolint:nilerr // a failed list is retried on the next poll
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodFailed && (p.Status.Reason == "NoAddress" || p.Status.Reason == "UnknownImage") {
			return fmt.Errorf("pod %s cannot run: %s: %s", p.Name, p.Status.Reason, p.Status.Message)
		}
	}
	return nil
}

// Close stops the cluster and closes the database connection.
func (r *Ready) Close() {
	if r.PG != nil {
		_ = r.PG.Close(context.Background())
	}
	r.Cluster.Stop()
}

// Run is `make demo`: it prepares everything, drives the phases while
// printing the table, writes the report and stops the cluster. It returns
// the report's folder.
func Run(ctx context.Context, o Options) (string, error) {
	r, err := Prepare(ctx, o, o.Out)
	if err != nil {
		return "", err
	}
	defer r.Close()

	objective := r.TS.Spec.Tuning.Objective.LatencyP99.Duration
	budget := *r.TS.Spec.Database.MaxTotalConnections
	load := &Load{Endpoints: r.Endpoints, IDs: r.IDs, WriteShare: 0.1, MaxInFlight: 256, Tag: strconv.FormatInt(time.Now().UnixNano(), 36)}
	sampler := &Sampler{C: r.Cluster.Client, TS: r.TS, Database: o.Database, PG: r.PG}
	phases := o.Phases
	if len(phases) == 0 {
		phases = Phases(o.Duration, o.BaseRPS)
	}
	o.Duration = TotalDuration(phases)

	loadDone := make(chan struct{})
	go func() { load.Run(ctx, phases); close(loadDone) }()
	fmt.Fprintf(o.Out, "\nload: %s (%.0f%% creates unless said), to the pods' addresses from the Service's EndpointSlices\n\n",
		describePhases(phases), load.WriteShare*100)
	fmt.Fprint(o.Out, TableHeader(objective, budget))

	var samples []Sample
	var rows []WindowRow
	every := o.TableEvery
	sampleTick := time.NewTicker(time.Second)
	defer sampleTick.Stop()
	lastRow := time.Now()
	var latest Sample
	running := true
	for running {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-loadDone:
			running = false
		case <-sampleTick.C:
		}
		sctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		if s, err := sampler.Take(sctx); err == nil {
			latest = s
			samples = append(samples, s)
		}
		cancel()
		if time.Since(lastRow) >= every || !running {
			lastRow = time.Now()
			// Whole seconds only: the current second is still filling.
			bins := load.Bins()
			n := len(bins) - 1
			width := int(every / time.Second)
			row := Row(float64(n), load.Phase(), Window(bins, n-width, n), every, latest)
			rows = append(rows, row)
			left := max(o.Duration-time.Since(load.Start()), 0).Round(time.Second)
			if o.Progress {
				fmt.Fprint(o.Out, "\r\033[K")
			}
			fmt.Fprint(o.Out, row.Format(objective))
			if o.Progress && running {
				fmt.Fprintf(o.Out, "  ▶ phase %s (%s), %s left", load.Phase(), phaseList(phases, load.Phase()), left)
			} else if running {
				fmt.Fprintf(o.Out, "  progress: phase %s, %s left\n", load.Phase(), left)
			}
		}
	}
	fmt.Fprintln(o.Out)

	decisions := CollectDecisions(samples)
	sum := Summarize(rows, load.Bins(), samples, decisions, objective, budget)
	sum.PodLimits = r.Cluster.PodLimits
	dir := o.ReportDir
	if dir == "" {
		dir = filepath.Join("reports", "demo-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := WriteReport(dir, sum, rows, decisions, load.Start(), objective); err != nil {
		return "", err
	}
	if !strings.HasPrefix(sum.PodLimits, "enforced") {
		fmt.Fprintf(o.Out, "\nWARNING: pod limits were not enforced (%s): pods shared the machine's CPU and memory without limits\n", sum.PodLimits)
	}
	fmt.Fprintf(o.Out, "\n%d requests, %d errors; p99 within %s in %.0f%% of %d windows; %d settings changed; peak %d database connections (budget %d)\n",
		sum.Requests, sum.Errors, objective, sum.WindowsInObjectivePct, sum.Windows, sum.Changes, sum.PeakConnections, budget)
	for _, d := range decisions {
		fmt.Fprintf(o.Out, "  %s\n", LastDecision([]pacerv1.Decision{d}))
	}
	fmt.Fprintln(o.Out, "stopping the dev cluster")
	r.Close()
	return dir, nil
}

// SelectorLabels of the demo's pods.
func SelectorLabels(ts *pacerv1.TunedService) client.MatchingLabels {
	return client.MatchingLabels(render.SelectorLabels(ts))
}

// Getenv returns the value of key or def.
func Getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// describePhases lists the phases (the first few of a long shape).
func describePhases(phases []Phase) string {
	const show = 8
	var out []string
	for i, p := range phases {
		if i == show {
			out = append(out, fmt.Sprintf("… %d phases, %s in all", len(phases), TotalDuration(phases)))
			break
		}
		out = append(out, p.String())
	}
	return strings.Join(out, ", ")
}

// phaseList names the phases, the current one in brackets.
func phaseList(phases []Phase, current string) string {
	if len(phases) > 8 {
		return fmt.Sprintf("%d phases", len(phases))
	}
	var out []string
	for _, p := range phases {
		if p.Name == current {
			out = append(out, "["+p.Name+"]")
		} else {
			out = append(out, p.Name)
		}
	}
	return strings.Join(out, " → ")
}
