package scenario

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
	// SteadyRPS, when set, is the steady load in req/s (the step doubles
	// it, the spike is 3.5×); else the default phases are multiples of the
	// capacity of a starting pod, measured first.
	SteadyRPS float64
	// Phases, when set (DEMO_SHAPE), replace the default phases of
	// Duration; Duration is then their total.
	Phases []Phase
	// Seed makes the request mix the same from run to run (0: random).
	Seed uint64
	// ReportDir receives the report.
	ReportDir string
	// Out receives the live table.
	Out io.Writer
	// TableEvery is the table's period.
	TableEvery time.Duration
	// Progress shows a progress line under the table, rewritten in place
	// (for a terminal); otherwise a progress line follows each row.
	Progress bool
	// Interval, when set (DEMO_INTERVAL), is the tuner's interval instead
	// of tunedservice.yaml's.
	Interval time.Duration
}

// Phases splits d into steady, a step, a short spike, and back down: at
// 0.4, 1.3, 2 and 0.4 times the capacity of a starting pod (PerCapacity:
// steady under the 70% CPU target of one pod, the step and the spike past
// its capacity; the spike as high as the load generator, four pods and
// PostgreSQL can run on two cores), or, given a steady rate in req/s, at
// 1, 2, 3.5 and 1 times that rate.
func Phases(d time.Duration, steadyRPS float64) []Phase {
	times := [4]float64{0.4, 1.3, 2, 0.4}
	perCapacity := steadyRPS == 0
	if !perCapacity {
		times = [4]float64{steadyRPS, 2 * steadyRPS, 3.5 * steadyRPS, steadyRPS}
	}
	return []Phase{
		{Name: "steady", Duration: d * 25 / 100, RPS: times[0], PerCapacity: perCapacity},
		{Name: "step", Duration: d * 40 / 100, RPS: times[1], PerCapacity: perCapacity},
		{Name: "spike", Duration: d * 10 / 100, RPS: times[2], PerCapacity: perCapacity},
		{Name: "down", Duration: d * 25 / 100, RPS: times[3], PerCapacity: perCapacity},
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

	// Capacity, when Prepare measured it (phases in multiples of
	// capacity), is what one starting pod answered per second.
	Capacity float64

	adminDSN, database string
	stop               context.CancelFunc // stops following the endpoints
}

// Prepare starts the cluster, then deploys the demo's TunedService on it
// (Deploy). Close the result when done: it stops the cluster.
func Prepare(ctx context.Context, o Options, log io.Writer) (*Ready, error) {
	fmt.Fprintln(log, "starting the dev cluster (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, node agent, manager)")
	cl, err := StartCluster(ctx, o.Cluster)
	if err != nil {
		return nil, err
	}
	fmt.Fprintln(log, "kubeconfig:", cl.Kubeconfig)
	fmt.Fprintln(log, "pod limits:", cl.PodLimits)
	fmt.Fprintln(log, "resource metrics:", cl.ResourceMetrics)
	ts, err := TunedService("default")
	if err != nil {
		cl.Stop()
		return nil, err
	}
	WithInterval(ts, o.Interval)
	var capacity float64
	if PerCapacity(o.Phases) {
		if capacity, err = MeasureCapacity(ctx, cl, ts, o.AdminDSN, o.Database+"_probe", log); err != nil {
			cl.Stop()
			return nil, err
		}
	}
	r, err := Deploy(ctx, cl, ts, o.AdminDSN, o.Database, log)
	if err != nil {
		cl.Stop()
		return nil, err
	}
	r.Capacity = capacity
	return r, nil
}

// Deploy (re)creates database on the server of adminDSN, applies ts with a
// Secret holding the database's URL, waits for a ready endpoint and seeds
// users. Remove undoes it and leaves the cluster running.
func Deploy(ctx context.Context, cl *Cluster, ts *pacerv1.TunedService, adminDSN, database string, log io.Writer) (*Ready, error) {
	ectx, stop := context.WithCancel(ctx)
	r := &Ready{Cluster: cl, TS: ts, adminDSN: adminDSN, database: database, stop: stop}
	fail := func(err error) (*Ready, error) {
		_ = r.Remove(context.WithoutCancel(ctx)) // the original error is the one to report
		return nil, err
	}
	var err error
	if r.DSN, err = PrepareDatabase(ctx, adminDSN, database); err != nil {
		return fail(err)
	}
	if r.PG, err = pgx.Connect(ctx, adminDSN); err != nil {
		return fail(err)
	}
	if err := Apply(ctx, cl.Client, ts, r.DSN); err != nil {
		return fail(err)
	}
	fmt.Fprintf(log, "applied TunedService %s (%s, p99 objective %s, connection budget %d); waiting for a ready pod\n",
		ts.Name, ts.Spec.Tuning.Mode, ts.Spec.Tuning.Objective.LatencyP99.Duration, *ts.Spec.Database.MaxTotalConnections)
	r.Endpoints = NewEndpoints(ectx, cl.Client, ts.Namespace, ts.Name, "http")
	deadline := time.Now().Add(3 * time.Minute)
	for len(r.Endpoints.Addrs()) == 0 {
		if err := podsThatCannotRun(ctx, cl.Client, ts); err != nil {
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
	if r.IDs, err = Seed(ctx, r.Endpoints.Pick(), SeededUsers, tag); err != nil {
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

// Close closes the database connection and stops the cluster.
func (r *Ready) Close() {
	if r.stop != nil {
		r.stop()
	}
	if r.PG != nil {
		_ = r.PG.Close(context.Background())
	}
	r.Cluster.Stop()
}

// Remove deletes the TunedService and its Secret, waits (up to 2 minutes)
// until its pods are gone, and drops the database; the cluster keeps
// running, so the next deployment starts with fresh pods and data.
func (r *Ready) Remove(ctx context.Context) error {
	if r.stop != nil {
		r.stop()
	}
	if r.PG != nil {
		_ = r.PG.Close(ctx)
		r.PG = nil
	}
	c := r.Cluster.Client
	var errs []error
	for _, obj := range []client.Object{
		r.TS,
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: r.TS.Spec.Database.URLSecretRef.Name, Namespace: r.TS.Namespace}},
	} {
		if err := c.Delete(ctx, obj, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var pods corev1.PodList
		err := c.List(ctx, &pods, client.InNamespace(r.TS.Namespace), SelectorLabels(r.TS))
		if err == nil && len(pods.Items) == 0 {
			break
		}
		if time.Now().After(deadline) {
			errs = append(errs, fmt.Errorf("the pods of %s were not gone 2 minutes after its deletion", r.TS.Name))
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	DropDatabase(r.adminDSN, r.database)
	return errors.Join(errs...)
}

// Run is `make demo`: it prepares everything, drives the phases while
// printing the table, writes the report and stops the cluster. It returns
// the report's folder.
func Run(ctx context.Context, o Options) (string, error) {
	if len(o.Phases) == 0 {
		o.Phases = Phases(o.Duration, o.SteadyRPS)
	}
	r, err := Prepare(ctx, o, o.Out)
	if err != nil {
		return "", err
	}
	defer r.Close()

	objective := r.TS.Spec.Tuning.Objective.LatencyP99.Duration
	budget := *r.TS.Spec.Database.MaxTotalConnections
	phases := Sized(o.Phases, r.Capacity)
	rec, err := Drive(ctx, r, DriveOptions{Phases: phases, Seed: o.Seed, Out: o.Out, TableEvery: o.TableEvery, Progress: o.Progress})
	if err != nil {
		return "", err
	}
	sum := Summarize(rec.Rows, rec.Bins, rec.Samples, rec.Decisions, objective, budget)
	sum.PodLimits = r.Cluster.PodLimits
	sum.CapacityRPS = r.Capacity
	sum.Load = describePhases(o.Phases)
	dir := o.ReportDir
	if dir == "" {
		dir = filepath.Join("reports", "demo-"+time.Now().UTC().Format("20060102-150405"))
	}
	if err := WriteReport(dir, sum, rec.Rows, rec.Decisions, rec.Start, objective); err != nil {
		return "", err
	}
	if !strings.HasPrefix(sum.PodLimits, "enforced") {
		fmt.Fprintf(o.Out, "\nWARNING: pod limits were not enforced (%s): pods shared the machine's CPU and memory without limits\n", sum.PodLimits)
	}
	fmt.Fprintf(o.Out, "\n%d requests, %d errors; p99 within %s in %.0f%% of %d windows; %d settings changed; peak %d database connections (budget %d)\n",
		sum.Requests, sum.Errors, objective, sum.WindowsInObjectivePct, sum.Windows, sum.Changes, sum.PeakConnections, budget)
	for _, d := range rec.Decisions {
		fmt.Fprintf(o.Out, "  %s\n", LastDecision([]pacerv1.Decision{d}))
	}
	fmt.Fprint(o.Out, grafanaHint(dir))
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

// grafanaHint says how to see the run in Grafana: the demo runs no
// Prometheus, so the report draws the dashboard's panels itself.
func grafanaHint(dir string) string {
	hint := "\ndashboard: " + filepath.Join(dir, "dashboard.svg") + " draws the Grafana dashboard's panels from this run's samples.\n"
	if _, err := exec.LookPath("grafana-server"); err == nil {
		hint += "Grafana is installed: import config/grafana/pacer-dashboard.json and point its Prometheus data source at a Prometheus\n" +
			"that scrapes the manager's metrics and the pods' admin ports with config/prometheus's monitors (the demo runs none).\n"
	} else {
		hint += "With a Grafana: import config/grafana/pacer-dashboard.json, with a Prometheus scraping as config/prometheus says.\n"
	}
	return hint
}
