// Command loadgen benchmarks pacer-api against a bare baseline on loopback.
//
//	loadgen bench -pacer-api bin/pacer-api [-duration 10s] [-conns 64]
//	loadgen startup -pacer-api bin/pacer-api [-runs 5] [-conns 64] (load at once when ready)
//	loadgen instructions -pacer-api bin/pacer-api [-requests 5000] (callgrind: instructions per read)
//	loadgen bare -addr 127.0.0.1:18081        (the baseline server; bench starts it)
//
// It needs DATABASE_URL pointing at a PostgreSQL on this machine (see
// hack/postgres.sh); it creates and drops its own database, pacer_bench.
// hack/bench-service.sh builds everything and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen bench|startup|instructions|bare [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bare":
		fs := flag.NewFlagSet("bare", flag.ExitOnError)
		addr := fs.String("addr", "127.0.0.1:18081", "listen address (loopback)")
		maxConns := fs.Int("max-conns", 16, "pool size (pacer-api's default)")
		pprofAddr := fs.String("pprof-addr", "127.0.0.1:19091", "pprof listener, separate from addr (empty: none)")
		_ = fs.Parse(os.Args[2:])
		err = serveBare(ctx, *addr, *pprofAddr, os.Getenv("DATABASE_URL"), int32(*maxConns))
	case "bench":
		fs := flag.NewFlagSet("bench", flag.ExitOnError)
		o := benchOptions{}
		fs.StringVar(&o.pacerBin, "pacer-api", "bin/pacer-api", "pacer-api binary")
		fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
		fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per round")
		fs.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections")
		fs.IntVar(&o.rounds, "rounds", 4, "alternating rounds per baseline/pacer-api pair; -duration is split across them")
		fs.StringVar(&o.out, "out", "", "also write the markdown table to this file")
		fs.StringVar(&o.extraConfig, "pacer-config", "", "YAML appended to both pacer-api configs, e.g. $'database:\\n  statementTimeout: 0s\\n'")
		fs.StringVar(&o.only, "only", "", "run only scenarios whose name contains this (for profiling)")
		fs.DurationVar(&o.hold, "hold", 0, "keep the servers up this long after the run (to take profiles)")
		_ = fs.Parse(os.Args[2:])
		o.dsn = os.Getenv("DATABASE_URL")
		err = bench(ctx, o)
	case "startup":
		fs := flag.NewFlagSet("startup", flag.ExitOnError)
		o := startupOptions{}
		fs.StringVar(&o.pacerBin, "pacer-api", "bin/pacer-api", "pacer-api binary")
		fs.IntVar(&o.runs, "runs", 5, "pacer-api processes started, one after the other")
		fs.IntVar(&o.conns, "conns", 64, "concurrent keep-alive connections")
		fs.DurationVar(&o.duration, "duration", 3*time.Second, "load per run, from the moment /readyz is true")
		fs.BoolVar(&o.noWait, "no-wait", false, "load once /healthz answers (listening), without waiting for /readyz")
		fs.StringVar(&o.extraConfig, "pacer-config", "", "YAML appended to the pacer-api config")
		_ = fs.Parse(os.Args[2:])
		o.dsn = os.Getenv("DATABASE_URL")
		err = startup(ctx, o)
	case "instructions":
		fs := flag.NewFlagSet("instructions", flag.ExitOnError)
		o := instructionsOptions{}
		fs.StringVar(&o.pacerBin, "pacer-api", "bin/pacer-api", "pacer-api binary (built with CGO_ENABLED=0 for valgrind)")
		fs.IntVar(&o.requests, "requests", 5000, "reads per measurement; each server is measured at this and 3× this")
		fs.IntVar(&o.conns, "conns", 16, "concurrent keep-alive connections")
		fs.IntVar(&o.repeats, "repeats", 2, "runs per server, alternating")
		fs.StringVar(&o.out, "out", "", "also write the markdown table to this file")
		_ = fs.Parse(os.Args[2:])
		o.dsn = os.Getenv("DATABASE_URL")
		err = instructions(ctx, o)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
