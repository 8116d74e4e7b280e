package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// jobRow is the jobs table's one row.
func jobRow(t *testing.T, pools *Pools) (state string, attempts int, lastErr string, backedOff bool) {
	t.Helper()
	if err := pools.Current().QueryRow(context.Background(), `SELECT state, attempts, COALESCE(last_error, ''),
		next_attempt_at > now() + interval '59 minutes' FROM jobs`).Scan(&state, &attempts, &lastErr, &backedOff); err != nil {
		t.Fatal(err)
	}
	return state, attempts, lastErr, backedOff
}

func enqueueOne(t *testing.T, users *Users, jobs *Jobs) {
	t.Helper()
	ctx := context.Background()
	u, err := users.Create(ctx, NewUser{Name: "A", Email: "a@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := jobs.EnqueueWelcome(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
}

// Issue 20, "pacer-api jobs": an attempt that ran out of its time was
// treated as a shutdown: rolled back uncounted and due again at once,
// forever when the database never answers in time. Now the database
// cancels the statement just before the attempt's deadline; the attempt
// is counted, backed off, and the last one leaves the job failed.
func TestTimedOutAttemptIsCountedAndBackedOff(t *testing.T) {
	users, pools, _ := migratedUsers(t)
	jobs := NewJobs(pools)
	enqueueOne(t, users, jobs)
	slow := func(ctx context.Context, tx pgx.Tx, job Job) error {
		_, err := tx.Exec(ctx, "SELECT pg_sleep(60)")
		return err
	}
	attempt := func() (Job, Outcome, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		return jobs.RunNext(ctx, []string{JobWelcome}, slow, retryTwice)
	}
	job, o, err := attempt()
	if err != nil || o != JobRetried || job.Attempt != 1 {
		t.Fatalf("a timed-out attempt: %v, %v, attempt %d; want retried after attempt 1", o, err, job.Attempt)
	}
	state, attempts, lastErr, backedOff := jobRow(t, pools)
	if state != "pending" || attempts != 1 || !backedOff || !strings.Contains(lastErr, "statement timeout") {
		t.Fatalf("after a timeout: state %s, attempts %d, backed off %v, last_error %q", state, attempts, backedOff, lastErr)
	}
	if _, err := pools.Current().Exec(context.Background(), "UPDATE jobs SET next_attempt_at = now()"); err != nil {
		t.Fatal(err)
	}
	if _, o, err := attempt(); err != nil || o != JobFailed {
		t.Fatalf("the last timed-out attempt: %v, %v; want failed", o, err)
	}
	if state, attempts, _, _ := jobRow(t, pools); state != "failed" || attempts != 2 {
		t.Fatalf("after the last attempt: state %s, attempts %d", state, attempts)
	}
}

// Issue 20, "pacer-api jobs": last_error was cut at 1,000 bytes, possibly
// inside a character; PostgreSQL refused the invalid UTF-8 and the UPDATE
// recording the failure failed with it (the job was due again at once,
// uncounted). NUL, which PostgreSQL refuses in text too, went in as is.
func TestLongErrorIsStoredCutBetweenCharacters(t *testing.T) {
	for _, msg := range []string{
		strings.Repeat("a", maxErrorLen-1) + "é and more",
		"nul\x00inside",
		"bad utf-8 \xff here",
	} {
		t.Run(msg[len(msg)-8:], func(t *testing.T) {
			users, pools, _ := migratedUsers(t)
			jobs := NewJobs(pools)
			enqueueOne(t, users, jobs)
			_, o := runNext(t, jobs, func(context.Context, pgx.Tx, Job) error { return errors.New(msg) })
			if o != JobRetried {
				t.Fatalf("outcome %v, want retried", o)
			}
			_, attempts, lastErr, _ := jobRow(t, pools)
			if attempts != 1 || len(lastErr) > maxErrorLen || !utf8.ValidString(lastErr) || strings.Contains(lastErr, "\x00") {
				t.Fatalf("attempts %d, last_error of %d bytes (valid %v): %q", attempts, len(lastErr), utf8.ValidString(lastErr), lastErr)
			}
		})
	}
}

// Issue 20, "pacer-api jobs": failed rows were never purged. Now the ones
// that failed longer ago than the retention are, in batches; pending jobs
// and recent failures stay.
func TestPurgeFailedKeepsPendingAndRecent(t *testing.T) {
	_, pools, _ := migratedUsers(t)
	ctx := context.Background()
	if _, err := pools.Current().Exec(ctx, `INSERT INTO jobs (kind, user_id, state, finished_at)
		SELECT 'welcome', i, 'failed', now() - interval '2 hours' FROM generate_series(1, 5) AS i;
		INSERT INTO jobs (kind, user_id, state, finished_at) VALUES ('welcome', 6, 'failed', now());
		INSERT INTO jobs (kind, user_id, created_at) VALUES ('welcome', 7, now() - interval '1 day')`); err != nil {
		t.Fatal(err)
	}
	jobs := NewJobs(pools)
	var total int64
	for {
		n, err := jobs.PurgeFailed(ctx, time.Hour, 2)
		if err != nil {
			t.Fatal(err)
		}
		if n > 2 {
			t.Fatalf("one purge deleted %d rows past its batch of 2", n)
		}
		if total += n; n < 2 {
			break
		}
	}
	var left []int64
	rows, _ := pools.Current().Query(ctx, "SELECT user_id FROM jobs ORDER BY user_id")
	left, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		t.Fatal(err)
	}
	if total != 5 || len(left) != 2 || left[0] != 6 || left[1] != 7 {
		t.Fatalf("purged %d, left jobs of users %v; want 5 purged, the recent failure (6) and the pending job (7) left", total, left)
	}
}

// The attempt's own bound lowers statement_timeout (2 s in the pool's
// config here) when the attempt has less time left, and never raises it.
func TestAttemptKeepsAShorterStatementTimeout(t *testing.T) {
	for _, tt := range []struct {
		attempt time.Duration
		want    string
	}{{time.Minute, "2s"}, {2500 * time.Millisecond, "1500ms"}} {
		users, pools, _ := migratedUsers(t)
		jobs := NewJobs(pools)
		enqueueOne(t, users, jobs)
		var got string
		ctx, cancel := context.WithTimeout(context.Background(), tt.attempt)
		_, o, err := jobs.RunNext(ctx, []string{JobWelcome}, func(ctx context.Context, tx pgx.Tx, job Job) error {
			return tx.QueryRow(ctx, "SHOW statement_timeout").Scan(&got)
		}, retryTwice)
		cancel()
		if err != nil || o != JobDone {
			t.Fatalf("attempt of %s: %v, %v", tt.attempt, o, err)
		}
		// The time left is read a few milliseconds after the claim.
		g, gerr := time.ParseDuration(got)
		w, _ := time.ParseDuration(tt.want)
		if gerr != nil || g > w || g < w-100*time.Millisecond {
			t.Errorf("attempt of %s: statement_timeout %s, want %s", tt.attempt, got, tt.want)
		}
	}
}
