package app

import (
	"context"
	"fmt"
	"io"
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

// Issue 11, "0 non-2xx from a pacer-api started and loaded at once": /readyz
// said ready once the schema was there and its own health connection
// answered, while the request pool might not yet hold (or be able to open)
// the connections it starts with; the first burst then dialled them, and a
// database refusing them (its connection limit reached by others) turned
// that burst into 503 database_unavailable. Now /readyz opens the pool's
// minimum connections first and stays 503 until it holds them, so load
// that waits for readiness finds them open.
func TestAdversarialReadyMeansPoolOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := testenv.FreshDatabase(t)
	const users, conns = 32, 4
	seedDirect(t, dsn, users)

	// The database admits conns connections; a squatter (another client)
	// holds one, so the pool can open at most conns-1 at start.
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	limit := func(n int) { // through the maintenance database: no slot of the limited one
		base, err := pgx.Connect(ctx, testenv.DatabaseURL(t))
		if err != nil {
			t.Fatal(err)
		}
		defer base.Close(ctx)
		if _, err := base.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s CONNECTION LIMIT %d", cfg.Database, n)); err != nil {
			t.Fatal(err)
		}
	}
	limit(conns)
	t.Cleanup(func() { limit(-1) })
	squatter, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer squatter.Close(ctx)

	a := startApp(t, appOptions{dsn: dsn, notReady: true, mutate: func(c *config.Config) {
		c.Database.MinConns, c.Database.MaxConns = conns, conns
		c.Database.HealthCheckPeriod = config.D(time.Hour) // pgxpool does not retry its start within the test
		c.Cache.TTL = config.D(0)                          // every read goes to the database
		c.Cache.TTL = config.D(0)                          // every read goes to the database
	}})

	// Poll readiness as a kubelet would. Once the schema is ready, the
	// squatter leaves (room for one more connection: the health check's);
	// once readiness says the pool is short, the limit is lifted.
	squatterGone, lifted := false, false
	eventually(t, "ready", func() bool {
		status, body := readyz(t, a)
		switch {
		case status == http.StatusOK:
			return true
		case strings.Contains(body, "schema"):
		case !squatterGone:
			squatterGone = true
			_ = squatter.Close(ctx)
		case strings.Contains(body, "pool") && !lifted:
			lifted = true
			limit(-1)
		}
		return false
	})

	// Load at once: every read answers 200.
	var wg sync.WaitGroup
	for id := 1; id <= users; id++ {
		wg.Go(func() {
			res, err := client.Get(fmt.Sprintf("%s/v1/users/%d", a.api, id))
			if err != nil {
				t.Errorf("user %d: %v", id, err)
				return
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				t.Errorf("user %d right after /readyz said ready: %d %s", id, res.StatusCode, body)
			}
		})
	}
	wg.Wait()
}

func readyz(t *testing.T, a *testApp) (int, string) {
	t.Helper()
	res, err := client.Get(a.admin + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// seedDirect applies the migrations and inserts users 1..n through SQL,
// for tests that must not warm pacer-api's pool before they start it.
func seedDirect(t *testing.T, dsn string, n int) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := store.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO users (name, email)
		SELECT 'User ' || i, 'user' || i || '@example.com' FROM generate_series(1, $1::int) AS i`, n); err != nil {
		t.Fatal(err)
	}
}
