package store

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacer-dev/pacer/internal/testenv"
)

func migrationCount(t *testing.T) int {
	t.Helper()
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}

func applyWelcome(ctx context.Context, tx pgx.Tx, job Job) error {
	return ApplyWelcome(ctx, tx, job.UserID)
}

func retryTwice(attempt int) (time.Duration, bool) { return time.Hour, attempt < 2 }

func runNext(t *testing.T, jobs *Jobs, apply ApplyFunc) (Job, Outcome) {
	t.Helper()
	job, outcome, err := jobs.RunNext(context.Background(), []string{JobWelcome}, apply, retryTwice)
	if err != nil {
		t.Fatal(err)
	}
	return job, outcome
}

func TestEnqueueWelcomeNeedsTheUser(t *testing.T) {
	users, pools, _ := migratedUsers(t)
	jobs := NewJobs(pools)
	if err := jobs.EnqueueWelcome(context.Background(), 42); !errors.Is(err, ErrNotFound) {
		t.Fatalf("EnqueueWelcome(no such user) = %v, want ErrNotFound", err)
	}
	u, _ := users.Create(context.Background(), NewUser{Name: "A", Email: "a@example.com"})
	if err := jobs.EnqueueWelcome(context.Background(), u.ID); err != nil {
		t.Fatal(err)
	}
	if n, _, err := jobs.Backlog(context.Background()); err != nil || n != 1 {
		t.Fatalf("Backlog = %d, %v; want 1 pending", n, err)
	}
}

// TestWelcomeAppliedTwiceChangesNothing is at-least-once delivery: the same
// welcome run twice keeps the first time.
func TestWelcomeAppliedTwiceChangesNothing(t *testing.T) {
	users, pools, _ := migratedUsers(t)
	ctx := context.Background()
	jobs := NewJobs(pools)
	u, _ := users.Create(ctx, NewUser{Name: "A", Email: "a@example.com"})
	welcomedAt := func() time.Time {
		var at time.Time
		if err := pools.Current().QueryRow(ctx, "SELECT welcomed_at FROM users WHERE id = $1", u.ID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	for range 2 {
		if err := jobs.EnqueueWelcome(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, o := runNext(t, jobs, applyWelcome); o != JobDone {
		t.Fatalf("first run: outcome %v", o)
	}
	first := welcomedAt()
	if _, o := runNext(t, jobs, applyWelcome); o != JobDone {
		t.Fatalf("second run: outcome %v", o)
	}
	if again := welcomedAt(); !again.Equal(first) {
		t.Fatalf("welcomed_at moved from %v to %v on the second run", first, again)
	}
	if _, o := runNext(t, jobs, applyWelcome); o != NoJob {
		t.Fatalf("a third run found a job (%v): done jobs must be deleted", o)
	}
}

// TestFailedJobBacksOffThenFails: a failure is recorded and the job waits
// for next_attempt_at; the last allowed attempt leaves it 'failed'.
func TestFailedJobBacksOffThenFails(t *testing.T) {
	users, pools, _ := migratedUsers(t)
	ctx := context.Background()
	jobs := NewJobs(pools)
	u, _ := users.Create(ctx, NewUser{Name: "A", Email: "a@example.com"})
	if err := jobs.EnqueueWelcome(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	boom := func(ctx context.Context, tx pgx.Tx, job Job) error {
		// A failing statement aborts the transaction: the savepoint must
		// keep the claim usable for recording the attempt.
		_, err := tx.Exec(ctx, "SELECT 1/0")
		return err
	}
	job, o := runNext(t, jobs, boom)
	if o != JobRetried || job.Attempt != 1 {
		t.Fatalf("first attempt: %v, attempt %d; want retried after attempt 1", o, job.Attempt)
	}
	var due bool
	var attempts int
	var lastErr string
	if err := pools.Current().QueryRow(ctx, "SELECT next_attempt_at > now() + interval '59 minutes', attempts, last_error FROM jobs").
		Scan(&due, &attempts, &lastErr); err != nil {
		t.Fatal(err)
	}
	if !due || attempts != 1 || !strings.Contains(lastErr, "division by zero") {
		t.Fatalf("after a failure: backed off %v, attempts %d, last_error %q", due, attempts, lastErr)
	}
	if _, o := runNext(t, jobs, boom); o != NoJob {
		t.Fatalf("a job waiting for its backoff was claimed: %v", o)
	}
	if _, err := pools.Current().Exec(ctx, "UPDATE jobs SET next_attempt_at = now()"); err != nil {
		t.Fatal(err)
	}
	if job, o := runNext(t, jobs, boom); o != JobFailed || job.Attempt != 2 {
		t.Fatalf("last attempt: %v, attempt %d; want failed", o, job.Attempt)
	}
	var state string
	if err := pools.Current().QueryRow(ctx, "SELECT state FROM jobs").Scan(&state); err != nil || state != "failed" {
		t.Fatalf("state %q (%v), want failed kept for inspection", state, err)
	}
	if _, o := runNext(t, jobs, applyWelcome); o != NoJob {
		t.Fatalf("a failed job was claimed again: %v", o)
	}
}

// TestClaimsSkipLockedJobs: two workers run two jobs at once; the second
// never waits for the first's claim.
func TestClaimsSkipLockedJobs(t *testing.T) {
	users, pools, _ := migratedUsers(t)
	ctx := context.Background()
	jobs := NewJobs(pools)
	for _, e := range []string{"a@example.com", "b@example.com"} {
		u, _ := users.Create(ctx, NewUser{Name: "A", Email: e})
		if err := jobs.EnqueueWelcome(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
	}
	holding, release := make(chan Job), make(chan struct{})
	firstDone := make(chan Outcome)
	go func() {
		_, o, err := jobs.RunNext(ctx, []string{JobWelcome}, func(ctx context.Context, tx pgx.Tx, job Job) error {
			holding <- job
			<-release
			return ApplyWelcome(ctx, tx, job.UserID)
		}, retryTwice)
		if err != nil {
			t.Error(err)
		}
		firstDone <- o
	}()
	held := <-holding
	second, o := runNext(t, jobs, applyWelcome)
	close(release)
	if o != JobDone || second.ID == held.ID {
		t.Fatalf("second worker: %v on job %d while job %d was held", o, second.ID, held.ID)
	}
	if o := <-firstDone; o != JobDone {
		t.Fatalf("first worker: %v", o)
	}
	if _, o := runNext(t, jobs, applyWelcome); o != NoJob {
		t.Fatalf("a job was left: %v", o)
	}
}

// TestUnknownKindsAreLeftAlone: a job of a kind this version does not know
// (stored by a newer one during a rolling update) is not claimed.
func TestUnknownKindsAreLeftAlone(t *testing.T) {
	_, pools, _ := migratedUsers(t)
	if _, err := pools.Current().Exec(context.Background(), "INSERT INTO jobs (kind, user_id) VALUES ('future', 1)"); err != nil {
		t.Fatal(err)
	}
	if _, o := runNext(t, NewJobs(pools), applyWelcome); o != NoJob {
		t.Fatalf("claimed a job of an unknown kind: %v", o)
	}
}

// TestMigrateUpgradesPreviousVersion: a database made by the previous
// version (only 0001 applied, users in it) gets the jobs table and keeps
// its rows.
func TestMigrateUpgradesPreviousVersion(t *testing.T) {
	dsn := testenv.FreshDatabase(t)
	ctx := context.Background()
	pool := newPool(t, dsn, 2)
	defer pool.Close()
	v1, err := migrationFiles.ReadFile("migrations/0001_users.sql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, string(v1)+`;
		CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
		INSERT INTO schema_migrations (version) VALUES ('0001_users');
		INSERT INTO users (name, email) VALUES ('Old', 'old@example.com')`); err != nil {
		t.Fatal(err)
	}
	n, err := Migrate(ctx, pool)
	if err != nil || n != migrationCount(t)-1 {
		t.Fatalf("Migrate on the previous version's database = %d, %v; want the new migrations only", n, err)
	}
	pools := NewPools(pool)
	users := NewUsers(pools)
	old, err := users.List(ctx, 0, 10)
	if err != nil || len(old) != 1 || old[0].Email != "old@example.com" {
		t.Fatalf("users after the upgrade: %+v, %v", old, err)
	}
	if err := NewJobs(pools).EnqueueWelcome(ctx, old[0].ID); err != nil {
		t.Fatalf("the jobs table after the upgrade: %v", err)
	}
}

// TestInvalidTextMapsTo422Error: if NUL ever gets past the validation,
// PostgreSQL's refusal is an input error, with the batch item named.
func TestInvalidTextIsAnInputError(t *testing.T) {
	users, _, _ := migratedUsers(t)
	ctx := context.Background()
	if _, err := users.Create(ctx, NewUser{Name: "a\x00b", Email: "a@example.com"}); !errors.Is(err, ErrInvalidText) {
		t.Fatalf("Create with NUL = %v, want ErrInvalidText", err)
	}
	_, err := users.CreateBatch(ctx, []NewUser{{Name: "z", Email: "z@example.com"}, {Name: "\x00", Email: "b@example.com"}})
	var be *BatchError
	if !errors.As(err, &be) || be.Index != 1 || !errors.Is(err, ErrInvalidText) {
		t.Fatalf("CreateBatch with NUL in item 1 = %v, want a BatchError at index 1", err)
	}
}
