package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

type startupOptions struct {
	dsn, pacerBin, extraConfig string
	runs, conns                int
	duration                   time.Duration
	noWait                     bool
}

const (
	startupAddr  = "127.0.0.1:18084"
	startupAdmin = "127.0.0.1:19094"
)

// startup measures what a pacer-api answers when load arrives the moment
// it is ready, as a pod put into rotation by its readiness probe sees it:
// runs times, a fresh pacer-api (cache off) is started, /readyz is polled
// until true, and a closed loop of uncached reads at conns connections
// starts at once, without a warm-up. Every answer but 200 is counted with
// its status and error code.
func startup(ctx context.Context, o startupOptions) error {
	dsn, dir, cleanup, err := workspace(ctx, o.dsn, "pacer_bench_startup")
	if err != nil {
		return err
	}
	defer cleanup()
	env := append(os.Environ(), "DATABASE_URL="+dsn)
	cfg := configFile(dir, "startup", startupAddr, startupAdmin, "ttl: 0s", o.extraConfig)
	base := "http://" + startupAddr

	// Seed through a first pacer-api, then start every measured one afresh.
	seeder, err := startProcess(ctx, env, dir, "seed", o.pacerBin, cfg)
	if err != nil {
		return err
	}
	err = waitOK(ctx, "http://"+startupAdmin+"/readyz")
	if err == nil {
		err = seed(base)
	}
	seeder.stop()
	if err != nil {
		return err
	}

	var failed int64
	for run := range o.runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p, err := startProcess(ctx, env, dir, fmt.Sprintf("startup-%d", run), o.pacerBin, cfg)
		if err != nil {
			return err
		}
		ready := "http://" + startupAdmin + "/readyz"
		if o.noWait {
			ready = "http://" + startupAdmin + "/healthz"
		}
		if err := waitOK(ctx, ready); err != nil {
			p.stop()
			return err
		}
		r := closedLoop(ctx, o.conns, 0, o.duration, maxPerConnLoop, func(c, i int) (*http.Request, error) {
			id := 1 + (c*7919+i*104729)%seedUsers
			return http.NewRequest("GET", fmt.Sprintf("%s/v1/users/%d", base, id), nil)
		}, http.StatusOK)
		p.stop()
		failed += r.Errors
		fmt.Printf("run %d: %d requests, %d not 200, p99 %s ms, load average %s\n",
			run+1, r.Requests, r.Errors, ms(r.P99), strings.TrimSpace(loadAverage()))
	}
	if failed > 0 {
		return fmt.Errorf("%d answers were not 200 (kinds above, on stderr)", failed)
	}
	return nil
}
