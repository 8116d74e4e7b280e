package store

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

func newPool(t *testing.T, dsn string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	db := config.Default().Database
	db.MinConns, db.MaxConns = 0, maxConns
	cfg, err := PoolConfig(dsn, db)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func migratedUsers(t *testing.T) (*Users, *Pools, string) {
	t.Helper()
	dsn := testenv.FreshDatabase(t)
	pools := NewPools(newPool(t, dsn, 8))
	t.Cleanup(pools.Close)
	if _, err := Migrate(context.Background(), pools.Current()); err != nil {
		t.Fatal(err)
	}
	return NewUsers(pools), pools, dsn
}

// TestConcurrentStartsMigrateOnce is ten pods starting at once.
func TestConcurrentStartsMigrateOnce(t *testing.T) {
	dsn := testenv.FreshDatabase(t)
	var applied atomic.Int64
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool := newPool(t, dsn, 2) // each "pod" has its own pool
			defer pool.Close()
			n, err := Migrate(context.Background(), pool)
			if err != nil {
				t.Error(err)
			}
			applied.Add(int64(n))
		}()
	}
	wg.Wait()
	pool := newPool(t, dsn, 1)
	defer pool.Close()
	var rows int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM schema_migrations").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if applied.Load() != int64(rows) || rows != migrationCount(t) {
		t.Fatalf("applied %d migrations in total, %d recorded; want each applied exactly once", applied.Load(), rows)
	}
}

func TestBatchIsAllOrNothing(t *testing.T) {
	users, _, _ := migratedUsers(t)
	ctx := context.Background()
	if _, err := users.Create(ctx, NewUser{Name: "Taken", Email: "taken@example.com"}); err != nil {
		t.Fatal(err)
	}
	batch := []NewUser{
		{Name: "A", Email: "a@example.com"},
		{Name: "B", Email: "b@example.com"},
		{Name: "C", Email: "TAKEN@example.com"}, // duplicate regardless of case
		{Name: "D", Email: "d@example.com"},
	}
	_, err := users.CreateBatch(ctx, batch)
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 2 || !errors.Is(err, ErrDuplicateEmail) {
		t.Fatalf("CreateBatch = %v, want a duplicate at index 2", err)
	}
	all, err := users.List(ctx, 0, 100)
	if err != nil || len(all) != 1 {
		t.Fatalf("after a failed batch there are %d users (%v), want only the first one", len(all), err)
	}
	created, err := users.CreateBatch(ctx, batch[:2])
	if err != nil || len(created) != 2 || created[0].Name != "A" {
		t.Fatalf("valid batch = %+v, %v", created, err)
	}
}

func TestUpdateBumpsVersionAndDeleteReturnsIt(t *testing.T) {
	users, _, _ := migratedUsers(t)
	ctx := context.Background()
	u, _ := users.Create(ctx, NewUser{Name: "A", Email: "a@example.com"})
	name := "B"
	u2, err := users.Update(ctx, u.ID, UserPatch{Name: &name})
	if err != nil || u2.Version != u.Version+1 || u2.Name != "B" || u2.Email != u.Email {
		t.Fatalf("Update = %+v, %v", u2, err)
	}
	v, err := users.Delete(ctx, u.ID)
	if err != nil || v != u2.Version {
		t.Fatalf("Delete = %d, %v; want version %d", v, err, u2.Version)
	}
	if _, err := users.Get(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after delete = %v", err)
	}
	if _, err := users.Delete(ctx, u.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
}

func TestStatementTimeout(t *testing.T) {
	dsn := testenv.FreshDatabase(t)
	db := config.Default().Database
	db.StatementTimeout = config.D(50 * time.Millisecond)
	cfg, _ := PoolConfig(dsn, db)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = pool.Exec(context.Background(), "SELECT pg_sleep(5)")
	if !errors.Is(mapError(err), ErrTimeout) {
		t.Fatalf("long statement = %v, want ErrTimeout from statement_timeout", err)
	}
}

// TestSwapUnderLoadFailsNothing swaps pools repeatedly while readers run.
func TestSwapUnderLoadFailsNothing(t *testing.T) {
	users, pools, dsn := migratedUsers(t)
	ctx := context.Background()
	u, _ := users.Create(ctx, NewUser{Name: "A", Email: "a@example.com"})

	stop := make(chan struct{})
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000; i++ { // bounded
				select {
				case <-stop:
					return
				default:
				}
				if _, err := users.Get(ctx, u.ID); err != nil {
					failed.Add(1)
					t.Errorf("Get during swap: %v", err)
					return
				}
				ok.Add(1)
			}
		}()
	}
	for i := range 5 {
		before := ok.Load()
		waitFor(t, func() bool { return ok.Load() > before+50 })
		if err := pools.Swap(ctx, newPool(t, dsn, int32(2+i))); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || pools.Swaps() != 5 {
		t.Fatalf("%d failed requests, %d swaps", failed.Load(), pools.Swaps())
	}
	if s := pools.Stats(); s.MaxConns != 6 || s.AcquireCount < ok.Load() {
		t.Fatalf("stats after swaps = %+v; want max 6 and all %d acquires counted", s, ok.Load())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMigrateOutlivesStatementTimeout: another pod holds the migration lock
// for longer than the pool's statement_timeout; migrations wait for it
// instead of being cancelled, and the pool's connections keep their
// statement_timeout afterwards.
func TestMigrateOutlivesStatementTimeout(t *testing.T) {
	dsn := testenv.FreshDatabase(t)
	ctx := context.Background()
	db := config.Default().Database
	db.MinConns, db.MaxConns = 0, 1
	db.StatementTimeout = config.D(20 * time.Millisecond)
	cfg, err := PoolConfig(dsn, db)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	holder := newPool(t, dsn, 2) // the other pod, and an observer
	defer holder.Close()
	lock, err := holder.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		t.Fatal(err)
	}

	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := Migrate(ctx, pool)
		done <- result{n, err}
	}()
	// Hold the lock until PostgreSQL itself shows the migration waiting for
	// it for ten times the statement_timeout (a cancelled wait would have
	// ended long before).
	for waited := false; !waited; {
		select {
		case r := <-done:
			t.Fatalf("Migrate returned while another session held the lock: %d, %v", r.n, r.err)
		default:
		}
		err := holder.QueryRow(ctx, `SELECT EXISTS (
			SELECT 1 FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND NOT l.granted AND a.datname = current_database()
			  AND a.query_start < now() - interval '200 milliseconds')`).Scan(&waited)
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := lock.Exec(ctx, "SELECT pg_advisory_unlock($1)", migrationLockKey); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.err != nil || r.n != migrationCount(t) {
		t.Fatalf("Migrate = %d, %v; want all %d migrations applied", r.n, r.err, migrationCount(t))
	}
	var st string
	if err := pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&st); err != nil {
		t.Fatal(err)
	}
	if st != "20ms" {
		t.Fatalf("statement_timeout after Migrate = %q, want the pool's 20ms back", st)
	}
}
