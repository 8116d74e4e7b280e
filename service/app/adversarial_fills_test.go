package app

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// Issue 11, row 3 and "misses are not starved by hits": cache fills were
// bounded only by the worker slots of the requests waiting for them, so a
// burst of misses of distinct keys took every pooled connection (and, with
// more workers than connections, queued unseen inside the pool). Now fills
// get half the pool: the others wait for a fill slot, counted in
// pacer_cache_fills_waiting. Counted on the database side: the reads of
// users blocked by a table lock.
func TestAdversarialFillsBoundedToHalfThePool(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	const maxConns, misses = 8, 12
	a := startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) {
		c.Database.MinConns, c.Database.MaxConns = 0, maxConns
		c.Database.StatementTimeout = config.D(0)
		c.Server.RequestTimeout = config.D(time.Minute) // longer than the test
		c.Workers.QueueTimeout = config.D(time.Minute)  // fills wait, not shed
	}})
	seedUsers(t, a, misses)
	release := lockUsers(t, dsn)

	var wg sync.WaitGroup
	for id := 1; id <= misses; id++ {
		wg.Go(func() {
			if res := a.do(t, "GET", fmt.Sprintf("/v1/users/%d", id), nil); res.status != http.StatusOK {
				t.Errorf("user %d after the lock: %d %s", id, res.status, res.body)
			}
		})
	}
	const budget = maxConns / 2
	eventually(t, "every miss running or waiting for a fill slot", func() bool {
		return a.metric(t, "pacer_cache_fills_in_flight") == budget && a.metric(t, "pacer_cache_fills_waiting") == misses-budget
	})
	if n := a.metric(t, "pacer_cache_fill_limit"); n != budget {
		t.Fatalf("pacer_cache_fill_limit = %v, want %d", n, budget)
	}
	// Every fill allowed to run is blocked on the lock, in PostgreSQL.
	eventually(t, "the fills' reads waiting on the lock", func() bool { return blockedReads(t, dsn) >= budget })
	for range 3 {
		if n := blockedReads(t, dsn); n != budget {
			t.Fatalf("%d reads of users in PostgreSQL at once, want the fill budget %d", n, budget)
		}
	}
	release()
	wg.Wait()
	if n := a.metric(t, "pacer_cache_fill_rejections_total"); n != 0 {
		t.Fatalf("%v fills rejected", n)
	}
}

// blockedReads counts the queries reading users that wait on a lock.
func blockedReads(t *testing.T, dsn string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'SELECT%FROM users WHERE id%'`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
