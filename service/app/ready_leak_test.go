package app

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
	"github.com/pacer-dev/pacer/service/store"
)

// limitDatabase sets the connection limit of dsn's database (-1: none),
// through the maintenance database so that it takes no slot of dsn's.
func limitDatabase(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	base, err := pgx.Connect(ctx, testenv.DatabaseURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close(ctx)
	if _, err := base.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d", cfg.Database, n)); err != nil {
		t.Fatal(err)
	}
}

// Issue 20, "pacer-api readiness": the unauthenticated /readyz answered
// with pgx's error text while the pool warmed, naming the database's host,
// user and name. Now it says what is wrong in generic words; the detail is
// in the log.
func TestAdversarialReadyzTellsNoDatabaseDetail(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn})
	// A pool that cannot warm (its server's port is closed), as a reload
	// could make: readiness checks it until it holds its minConns.
	db := a.Config().Database
	db.MinConns, db.MaxConns = 4, 4
	pcfg, err := store.PoolConfig(dsn, db)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.Port = closedPort(t)
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	a.pools.Replace(pool)
	a.poolWarmed.Store(false)

	status, body := readyz(t, a)
	if status != http.StatusServiceUnavailable || body != "database pool warming: 0 of 4 connections open\n" {
		t.Errorf("readyz: %d %q, want 503 with the generic reason alone", status, body)
	}
	for _, secret := range []string{pcfg.ConnConfig.Host, pcfg.ConnConfig.User, pcfg.ConnConfig.Database, "failed to connect"} {
		if strings.Contains(body, secret) {
			t.Errorf("readyz body %q tells %q", body, secret)
		}
	}
	if logs := a.logs.String(); !strings.Contains(logs, pcfg.ConnConfig.Database) {
		t.Errorf("the reason's detail is not in the log:\n%s", logs)
	}
}

// closedPort is a loopback TCP port nothing listens on.
func closedPort(t *testing.T) uint16 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return uint16(port)
}

// Issue 20, "pacer-api readiness": concurrent /readyz calls during warm-up
// each warmed the pool, each holding and dialling connections of its own,
// up to the pool's maximum. Now they share one warm-up, which opens the
// pool's minimum.
func TestAdversarialConcurrentReadyzShareOneWarmUp(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	const minConns, maxConns = 4, 16
	limitDatabase(t, dsn, 2) // pgxpool's own start-up fill fails
	t.Cleanup(func() { limitDatabase(t, dsn, -1) })
	a := startApp(t, appOptions{dsn: dsn, notReady: true, mutate: func(c *config.Config) {
		c.Database.MinConns, c.Database.MaxConns = minConns, maxConns
		c.Database.HealthCheckPeriod = config.D(time.Hour) // no refill by pgxpool within the test
	}})
	eventually(t, "schema ready", func() bool { return a.migrated.Load() })
	// The job workers share the pool: stopped, the warm-up alone opens
	// connections.
	if err := a.jobs.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	limitDatabase(t, dsn, -1)

	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() { readyz(t, a) })
	}
	wg.Wait()
	eventually(t, "ready", func() bool { status, _ := readyz(t, a); return status == http.StatusOK })
	if total := a.pools.Current().Stat().TotalConns(); total > minConns {
		t.Fatalf("the pool opened %d connections to warm up; want at most its minimum, %d", total, minConns)
	}
}
