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
// Env: DEMO_DURATION (load length, of each run with --compare, default
// 3m), DEMO_RPS (steady load, default 300), DEMO_SEED (the request mix's
// seed, default 1), DEMO_SHAPE (a load shape file, instead of the default
// phases; docs/demo.md), DATABASE_URL (an admin DSN; hack/postgres.sh prints one),
// KUBEBUILDER_ASSETS (control-plane binaries).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/pacer-dev/pacer/hack/demo/scenario"
)

func main() {
	var (
		report  = flag.String("report", "", "report folder (default reports/demo-<time>, or reports/compare-<time>)")
		bin     = flag.String("bin", "bin", "folder with devcluster, manager and pacer-api")
		compare = flag.Bool("compare", false, "run the load against static settings, an HPA and Pacer, one after the other")
		budget  = flag.Bool("budget", false, "two TunedServices on one database and one ConnectionBudget, one steady and one spiking; then with an HPA on the spiking one")
	)
	flag.Parse()
	duration, err := time.ParseDuration(scenario.Getenv("DEMO_DURATION", "3m"))
	if err != nil {
		fail(fmt.Errorf("DEMO_DURATION: %w", err))
	}
	rps, err := strconv.ParseFloat(scenario.Getenv("DEMO_RPS", "300"), 64)
	if err != nil {
		fail(fmt.Errorf("DEMO_RPS: %w", err))
	}
	seed, err := strconv.ParseUint(scenario.Getenv("DEMO_SEED", "1"), 10, 64)
	if err != nil || seed == 0 {
		fail(fmt.Errorf("DEMO_SEED: want a whole number above 0"))
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
		if len(phases) == 0 {
			phases = scenario.Phases(duration, rps)
		}
		prefix := "pacer_compare_" + strconv.Itoa(os.Getpid())
		dropAll := func() {
			for _, run := range scenario.CompareRuns {
				scenario.DropDatabase(dsn, prefix+"_"+run)
			}
		}
		defer dropAll()
		out, err := scenario.RunCompare(ctx, scenario.CompareOptions{
			Cluster: cluster, AdminDSN: dsn, DatabasePrefix: prefix, Phases: phases, Seed: seed,
			ReportDir: dir, Out: os.Stdout, TableEvery: 5 * time.Second, Progress: isTerminal(os.Stdout),
			Warmup: 10 * time.Second,
		})
		if err != nil {
			dropAll()
			fail(fmt.Errorf("%w (dev cluster log: %s)", err, clusterLog.Name()))
		}
		fmt.Println("report:", out)
		return
	}
	// The run's own database, dropped at the end.
	database := "pacer_demo_" + strconv.Itoa(os.Getpid())
	defer scenario.DropDatabase(dsn, database)
	out, err := scenario.Run(ctx, scenario.Options{
		Cluster:    cluster,
		AdminDSN:   dsn,
		Database:   database,
		Duration:   duration,
		BaseRPS:    rps,
		Seed:       seed,
		Phases:     phases,
		ReportDir:  dir,
		Out:        os.Stdout,
		TableEvery: 5 * time.Second,
		Progress:   isTerminal(os.Stdout),
	})
	if err != nil {
		scenario.DropDatabase(dsn, database)
		fail(fmt.Errorf("%w (dev cluster log: %s)", err, clusterLog.Name()))
	}
	fmt.Println("report:", out)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "demo:", err)
	os.Exit(1)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
