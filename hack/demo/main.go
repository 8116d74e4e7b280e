// Command demo is `make demo`: it runs Pacer's whole loop on this machine
// (the dev cluster, the manager, pacer-api pods on PostgreSQL), drives
// load through it in phases, shows a live table, and writes a report.
// With --compare it is `make demo-compare`: the same load, one run after
// the other, against static settings, a real HPA, and Pacer (docs/demo.md).
// With --budget it is `make demo-budget`: two TunedServices on one
// database share a ConnectionBudget (docs/connection-budget.md); its load
// is sized by a probe of one pod, and DEMO_DURATION is its first run's length.
// hack/demo.sh builds what it needs and runs it. Its last line of output is
// "report: <folder>".
//
// Env: DEMO_DURATION (load length of the default phases, default 3m),
// DEMO_RPS (the default phases' steady load in req/s; unset, they are
// multiples of the capacity of a starting pod, measured first), DEMO_SEED
// (the request mix's seed, default 1), DEMO_INTERVAL (the tuner's
// spec.tuning.interval, default the scenario's 10s), DEMO_SHAPE (a load shape file,
// instead of the default phases; docs/demo.md), DATABASE_URL (an admin
// DSN; hack/postgres.sh prints one), KUBEBUILDER_ASSETS (control-plane
// binaries).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pacer-dev/pacer/hack/demo/scenario"
)

func main() {
	var (
		report  = flag.String("report", "", "report folder (default reports/demo-<time>, or reports/compare-<time>)")
		bin     = flag.String("bin", "bin", "folder with devcluster, manager and pacer-api")
		compare = flag.Bool("compare", false, "run the load against static settings, two HPAs and Pacer, one after the other")
		shapes  = flag.String("shapes", "", "with --compare: the loads to compare on, in order, e.g. 'default*3,hack/demo/shapes/bursts.shape' (default: DEMO_SHAPE or the default phases, once)")
		budget  = flag.Bool("budget", false, "two TunedServices on one database and one ConnectionBudget, one steady and one spiking; then with an HPA on the spiking one")
	)
	flag.Parse()
	duration, err := time.ParseDuration(scenario.Getenv("DEMO_DURATION", "3m"))
	if err != nil {
		fail(fmt.Errorf("DEMO_DURATION: %w", err))
	}
	rps, err := strconv.ParseFloat(scenario.Getenv("DEMO_RPS", "0"), 64)
	if err != nil || rps < 0 {
		fail(fmt.Errorf("DEMO_RPS: want requests per second (unset: multiples of the measured capacity)"))
	}
	seed, err := strconv.ParseUint(scenario.Getenv("DEMO_SEED", "1"), 10, 64)
	if err != nil || seed == 0 {
		fail(fmt.Errorf("DEMO_SEED: want a whole number above 0"))
	}
	var interval time.Duration
	if v := os.Getenv("DEMO_INTERVAL"); v != "" {
		if interval, err = time.ParseDuration(v); err != nil || interval <= 0 {
			fail(fmt.Errorf("DEMO_INTERVAL %q: want a duration such as 30s", v))
		}
	}
	var phases []scenario.Phase
	if path := os.Getenv("DEMO_SHAPE"); path != "" {
		if phases, err = scenario.LoadShape(path); err != nil {
			fail(fmt.Errorf("DEMO_SHAPE %w", err))
		}
		duration = scenario.TotalDuration(phases)
	}
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		fail(fmt.Errorf("DATABASE_URL is empty (hack/postgres.sh prints one)"))
	}
	dir := *report
	if dir == "" {
		kind := "demo-"
		if *compare {
			kind = "compare-"
		}
		if *budget {
			kind = "budget-"
		}
		dir = filepath.Join("reports", kind+time.Now().UTC().Format("20060102-150405"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fail(err)
	}
	clusterLog, err := os.Create(filepath.Join(dir, "devcluster.log"))
	if err != nil {
		fail(err)
	}
	defer clusterLog.Close()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cluster := scenario.ClusterOptions{
		Devcluster: filepath.Join(*bin, "devcluster"),
		Assets:     os.Getenv("KUBEBUILDER_ASSETS"),
		PacerAPI:   filepath.Join(*bin, "pacer-api"),
		Manager:    filepath.Join(*bin, "manager"),
		CRDs:       "config/crd/bases",
		Log:        clusterLog,
	}
	if *budget {
		database := "pacer_budget_" + strconv.Itoa(os.Getpid())
		defer scenario.DropDatabase(dsn, database)
		out, err := scenario.RunShared(ctx, scenario.Options{
			Cluster: cluster, AdminDSN: dsn, Database: database, Duration: duration, Seed: seed,
			ReportDir: dir, Out: os.Stdout, TableEvery: 5 * time.Second,
		})
		if err != nil {
			scenario.DropDatabase(dsn, database)
			fail(fmt.Errorf("%w (dev cluster log: %s)", err, clusterLog.Name()))
		}
		fmt.Println("report:", out)
		return
	}
	if *compare {
		list, err := compareShapes(*shapes, phases, duration, rps)
		if err != nil {
			fail(err)
		}
		prefix := "pacer_compare_" + strconv.Itoa(os.Getpid())
		dropAll := func() {
			for _, run := range append(scenario.CompareRuns, "probe") {
				scenario.DropDatabase(dsn, prefix+"_"+run)
			}
		}
		defer dropAll()
		out, err := scenario.RunCompare(ctx, scenario.CompareOptions{
			Cluster: cluster, AdminDSN: dsn, DatabasePrefix: prefix, Shapes: list, Seed: seed,
			ReportDir: dir, Out: os.Stdout, TableEvery: 5 * time.Second, Progress: isTerminal(os.Stdout),
			Warmup: 10 * time.Second, Interval: interval,
		})
		if err != nil {
			dropAll()
			fail(fmt.Errorf("%w (dev cluster log: %s)", err, clusterLog.Name()))
		}
		fmt.Println("report:", out)
		return
	}
	// The run's own database (and its capacity probe's), dropped at the end.
	database := "pacer_demo_" + strconv.Itoa(os.Getpid())
	defer scenario.DropDatabase(dsn, database)
	defer scenario.DropDatabase(dsn, database+"_probe")
	out, err := scenario.Run(ctx, scenario.Options{
		Cluster:    cluster,
		AdminDSN:   dsn,
		Database:   database,
		Duration:   duration,
		SteadyRPS:  rps,
		Seed:       seed,
		Phases:     phases,
		ReportDir:  dir,
		Out:        os.Stdout,
		TableEvery: 5 * time.Second,
		Progress:   isTerminal(os.Stdout),
		Interval:   interval,
	})
	if err != nil {
		scenario.DropDatabase(dsn, database)
		fail(fmt.Errorf("%w (dev cluster log: %s)", err, clusterLog.Name()))
	}
	fmt.Println("report:", out)
}

// compareShapes reads --shapes: comma-separated items, each "default" (the
// default phases) or a shape file, optionally "*N" for N repetitions.
// Without it the comparison runs once on DEMO_SHAPE or the default phases.
func compareShapes(spec string, shape []scenario.Phase, duration time.Duration, rps float64) ([]scenario.CompareShape, error) {
	if spec == "" {
		if len(shape) > 0 {
			return []scenario.CompareShape{{Name: strings.TrimSuffix(filepath.Base(os.Getenv("DEMO_SHAPE")), ".shape"), Phases: shape}}, nil
		}
		return []scenario.CompareShape{{Name: "default", Phases: scenario.Phases(duration, rps)}}, nil
	}
	var out []scenario.CompareShape
	for _, item := range strings.Split(spec, ",") {
		name, count, repeated := strings.Cut(strings.TrimSpace(item), "*")
		n := 1
		if repeated {
			var err error
			if n, err = strconv.Atoi(count); err != nil || n < 1 || n > 20 {
				return nil, fmt.Errorf("--shapes %q: %q: want NAME or NAME*N with N from 1 to 20", spec, item)
			}
		}
		s := scenario.CompareShape{Name: name, Phases: scenario.Phases(duration, rps)}
		if name != "default" {
			phases, err := scenario.LoadShape(name)
			if err != nil {
				return nil, fmt.Errorf("--shapes: %w", err)
			}
			s = scenario.CompareShape{Name: strings.TrimSuffix(filepath.Base(name), ".shape"), Phases: phases}
		}
		for range n {
			out = append(out, s)
		}
	}
	return out, nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
