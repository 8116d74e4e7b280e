package app

// The adversarial suite, data half (issue 11 rows 4 to 7): what a hostile
// or unlucky client, a torn config write, a racing batch or a pod dying
// after 202 does to what is stored. Each test runs a real pacer-api against
// a real PostgreSQL. Run this suite alone with
//
//	export PACER_TEST_DATABASE_URL="$(hack/postgres.sh)"
//	go test -count=1 -run 'TestAdversarial' ./service/app/
//
// Extend it with a TestAdversarial... per fault, asserting both what the
// client sees and what is stored.

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
	m "github.com/pacer-dev/pacer/service/metrics"
)

// stopApp shuts a down as SIGTERM would and returns Wait's result.
func stopApp(t *testing.T, a *testApp) error {
	t.Helper()
	a.cancel()
	select {
	case err := <-a.done:
		a.done <- nil // for the cleanup
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("shutdown did not finish within 60s")
		return nil
	}
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// lockWaiters is the number of other sessions of this database waiting for
// a lock. Read from its own connection: pg_stat_activity is frozen for the
// length of a transaction.
func lockWaiters(t *testing.T, observer *pgx.Conn) int {
	t.Helper()
	var n int
	if err := observer.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// sessions describes this database's other sessions, for failure messages.
func sessions(t *testing.T, observer *pgx.Conn) string {
	t.Helper()
	rows, err := observer.Query(context.Background(), `SELECT pid, state, COALESCE(wait_event_type, ''), COALESCE(wait_event, ''), left(query, 80)
		FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var pid int
		var state, typ, event, query string
		if err := rows.Scan(&pid, &state, &typ, &event, &query); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "%d %s %s/%s %q\n", pid, state, typ, event, query)
	}
	return b.String()
}

// Row 4: a config file truncated to empty by a non-atomic write, or an
// older generation, is refused like any invalid file.
func TestAdversarialTruncatedOrOlderConfigRefused(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := testConfig()
	cfg.Generation = 5
	cfg.RateLimit.RequestsPerSecond, cfg.RateLimit.Burst = 100, 10
	testenv.WriteConfig(t, path, cfg)
	a := startApp(t, appOptions{configPath: path})

	failures := func() float64 { return a.metric(t, m.ConfigReloadsTotal, `result="failure"`) }
	if err := os.Truncate(path, 0); err != nil { // what a non-atomic writer leaves mid-write
		t.Fatal(err)
	}
	eventually(t, "the empty file refused", func() bool { return failures() == 1 })
	if err := a.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "no settings") {
		t.Fatalf("Reload of an empty file = %v, want a refusal", err)
	}
	if got := a.Config(); got.Generation != 5 || got.RateLimit.RequestsPerSecond != 100 {
		t.Fatalf("after an empty file: generation %d, rate %v; want 5 and 100 kept", got.Generation, got.RateLimit.RequestsPerSecond)
	}
	if g := a.metric(t, m.ConfigGeneration); g != 5 {
		t.Fatalf("%s = %v after an empty file, want 5", m.ConfigGeneration, g)
	}

	older := cfg
	older.Generation = 3
	older.RateLimit.RequestsPerSecond, older.RateLimit.Burst = 0, 0
	before := failures()
	testenv.WriteConfig(t, path, older)
	eventually(t, "the older generation refused", func() bool { return failures() > before })
	if got := a.Config(); got.Generation != 5 || got.RateLimit.RequestsPerSecond != 100 {
		t.Fatalf("after generation 3: generation %d, rate %v; want 5 and 100 kept", got.Generation, got.RateLimit.RequestsPerSecond)
	}
	if !strings.Contains(a.logs.String(), "generation 3 is older than the 5 in effect") {
		t.Fatalf("no log line explains the refused generation:\n%s", a.logs.String())
	}

	reloadTo(t, a, path, &cfg, func(c *config.Config) { c.RateLimit.RequestsPerSecond = 50 })
	if got := a.Config(); got.Generation != 6 || got.RateLimit.RequestsPerSecond != 50 {
		t.Fatalf("a newer generation after the refusals: %d, %v", got.Generation, got.RateLimit.RequestsPerSecond)
	}
}

type batchUser struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

func batchBody(emails []string) map[string][]batchUser {
	users := make([]batchUser, len(emails))
	for i, e := range emails {
		users[i] = batchUser{Name: "N" + e[:strings.IndexByte(e, '@')], Email: e}
	}
	return map[string][]batchUser{"users": users}
}

// Row 5: two batches of the same 600 emails, one reversed, at once. One
// creates them all, the other is told they are taken; nobody deadlocks.
func TestAdversarialOppositeBatchesDoNotDeadlock(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		// The second batch waits for the first to commit; on a busy
		// machine that must not read as a timeout.
		c.Database.StatementTimeout = config.D(20 * time.Second)
		c.Server.RequestTimeout = config.D(30 * time.Second)
	}})
	for round := range 3 {
		emails := make([]string, 600)
		for i := range emails {
			emails[i] = fmt.Sprintf("r%du%03d@example.com", round, i)
		}
		reversed := make([]string, len(emails))
		for i, e := range emails {
			reversed[len(emails)-1-i] = e
		}
		var wg sync.WaitGroup
		res := make([]response, 2)
		for i, list := range [][]string{emails, reversed} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = a.do(t, "POST", "/v1/users/batch", batchBody(list))
			}()
		}
		wg.Wait()
		created := 0
		for i, r := range res {
			switch r.status {
			case http.StatusCreated:
				created++
				var out struct{ Users []user }
				r.json(t, &out)
				want := [][]string{emails, reversed}[i]
				for j, u := range out.Users {
					if u.Email != want[j] {
						t.Fatalf("round %d: users[%d] = %s, want %s: the response lost the request order", round, j, u.Email, want[j])
					}
				}
			case http.StatusConflict:
				if code := r.errorCode(t); code != "duplicate_email" {
					t.Fatalf("round %d: 409 %s, want duplicate_email", round, r.body)
				}
			default:
				t.Fatalf("round %d: batch answered %d %s", round, r.status, r.body)
			}
		}
		if created != 1 {
			t.Fatalf("round %d: %d batches created, want exactly one", round, created)
		}
	}
}

// patientDatabase lets a batch wait for the test's sessions for as long as
// the choreography takes on a busy machine.
func patientDatabase(c *config.Config) {
	c.Database.StatementTimeout = config.D(time.Minute)
	c.Server.RequestTimeout = config.D(2 * time.Minute)
}

// session is a test-held transaction that inserts users.
type session struct {
	t  *testing.T
	tx pgx.Tx
}

func beginSession(t *testing.T, dsn string) *session {
	t.Helper()
	tx, err := connect(t, dsn).Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return &session{t: t, tx: tx}
}

func (s *session) insert(email string) {
	s.t.Helper()
	if err := <-s.insertAsync(email); err != nil {
		s.t.Fatal(err)
	}
}

// insertAsync inserts email; the result arrives when the insert stops
// waiting for whoever holds the same email.
func (s *session) insertAsync(email string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := s.tx.Exec(context.Background(), "INSERT INTO users (name, email) VALUES ('other', $1)", email)
		done <- err
	}()
	return done
}

func (s *session) rollback() {
	s.t.Helper()
	if err := s.tx.Rollback(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// deadlockBatch makes a batch of five emails (k0 < ... < k4) lose a
// deadlock to another session once or twice, deterministically and
// without superuser rights. PostgreSQL checks for a deadlock once, when a
// waiter has waited deadlock_timeout; the session whose check finds the
// cycle is aborted. So the other session first waits on the batch while
// the batch waits on a third session (no cycle: its check finds nothing),
// and only after that check has run is the batch released into a wait on
// the other session, which closes the cycle: the batch's check finds it.
func deadlockBatch(t *testing.T, a *testApp, dsn string, losses int) response {
	t.Helper()
	ctx := context.Background()
	k := []string{"k0@example.com", "k1@example.com", "k2@example.com", "k3@example.com", "k4@example.com"}
	observer := connect(t, dsn)
	var deadlockTimeout string
	if err := observer.QueryRow(ctx, "SHOW deadlock_timeout").Scan(&deadlockTimeout); err != nil {
		t.Fatal(err)
	}
	wait, err := time.ParseDuration(deadlockTimeout)
	if err != nil {
		t.Fatalf("deadlock_timeout %q: %v", deadlockTimeout, err)
	}
	done := make(chan response, 1)
	waiters := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); lockWaiters(t, observer) != n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				batch := "the batch has not answered"
				select {
				case res := <-done:
					batch = fmt.Sprintf("the batch answered %d %s", res.status, res.body)
				default:
				}
				t.Fatalf("not within 30s: %d sessions waiting for locks (%s); sessions:\n%s", n, batch, sessions(t, observer))
			}
		}
	}
	checked := func() { time.Sleep(2*wait + 500*time.Millisecond) } // the waiters' one deadlock check has run

	other, gate1, gate2 := beginSession(t, dsn), beginSession(t, dsn), beginSession(t, dsn)
	other.insert(k[4])
	gate1.insert(k[3])
	go func() { done <- a.do(t, "POST", "/v1/users/batch", batchBody([]string{k[2], k[0], k[4], k[1], k[3]})) }()

	// Attempt 1 holds k0..k2 and waits on gate1 (k3).
	waiters(1)
	otherK2, gate2K1 := other.insertAsync(k[2]), gate2.insertAsync(k[1])
	waiters(3)
	checked()
	gate1.rollback() // the batch takes k3, waits on other (k4): cycle, and only its check is pending
	if err := <-otherK2; err != nil {
		t.Fatalf("the other session lost the deadlock instead of the batch: %v", err)
	}
	if err := <-gate2K1; err != nil {
		t.Fatal(err)
	}
	if losses == 2 {
		// The retry holds k0 and waits on gate2 (k1).
		waiters(1)
		otherK0 := other.insertAsync(k[0])
		waiters(2)
		checked()
		gate2.rollback() // the retry takes k1, waits on other (k2): cycle again
		if err := <-otherK0; err != nil {
			t.Fatalf("the other session lost the second deadlock instead of the batch: %v", err)
		}
	} else {
		gate2.rollback()
	}
	other.rollback()
	return <-done
}

// Row 5, forced: a deadlock is retried once and the batch succeeds.
func TestAdversarialDeadlockRetriedOnce(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn, mutate: patientDatabase})
	res := deadlockBatch(t, a, dsn, 1)
	if res.status != http.StatusCreated {
		t.Fatalf("batch after one lost deadlock: %d %s; want 201 from the retry", res.status, res.body)
	}
}

// Row 5, forced twice: the retry loses too; the client gets 409
// write_conflict (not 500) and nothing is stored.
func TestAdversarialDeadlockTwiceIs409(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn, mutate: patientDatabase})
	res := deadlockBatch(t, a, dsn, 2)
	if res.status != http.StatusConflict || res.errorCode(t) != "write_conflict" || res.header.Get("Retry-After") == "" {
		t.Fatalf("batch after two lost deadlocks: %d %v %s; want 409 write_conflict with Retry-After", res.status, res.header, res.body)
	}
	var n int
	if err := connect(t, dsn).QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d users stored after a refused batch (%v), want 0", n, err)
	}
}

// Row 6: U+0000 in any text field, single, PATCH or batch, is 422 naming
// the field (and the batch item); nothing is stored.
func TestAdversarialNULIs422(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn})
	u := createUser(t, a, "Ada", "ada@example.com")
	type errBody struct {
		Error struct {
			Code, Message string
			Index         *int
		}
	}
	check := func(res response, field string, index *int) {
		t.Helper()
		var e errBody
		res.json(t, &e)
		if res.status != http.StatusUnprocessableEntity || e.Error.Code != "validation_failed" ||
			!strings.HasPrefix(e.Error.Message, field+":") {
			t.Fatalf("%d %s; want 422 validation_failed naming %s", res.status, res.body, field)
		}
		if (index == nil) != (e.Error.Index == nil) || (index != nil && *index != *e.Error.Index) {
			t.Fatalf("%s: index %v, want %v", res.body, e.Error.Index, index)
		}
	}
	check(a.do(t, "POST", "/v1/users", `{"name":"a\u0000b","email":"nul@example.com"}`), "name", nil)
	check(a.do(t, "POST", "/v1/users", `{"name":"ok","email":"nul\u0000@example.com"}`), "email", nil)
	check(a.do(t, "PATCH", fmt.Sprintf("/v1/users/%d", u.ID), `{"name":"\u0000"}`), "name", nil)
	two := 2
	check(a.do(t, "POST", "/v1/users/batch", `{"users":[{"name":"x","email":"x@example.com"},
		{"name":"y","email":"y@example.com"},{"name":"z\u0000","email":"z@example.com"}]}`), "users[2].name", &two)

	var n int
	var name string
	conn := connect(t, dsn)
	if err := conn.QueryRow(context.Background(), "SELECT count(*), max(name) FROM users").Scan(&n, &name); err != nil || n != 1 || name != "Ada" {
		t.Fatalf("users after refused writes: %d, %q (%v); want only Ada, unchanged", n, name, err)
	}
}

// Row 7: ten welcomes while another session holds the users table: all are
// acknowledged, and all are applied once the lock is gone.
func TestAdversarialWelcomesDuringTableLock(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn})
	ids := make([]int64, 10)
	for i := range ids {
		ids[i] = createUser(t, a, "W", fmt.Sprintf("w%d@example.com", i)).ID
	}
	ctx := context.Background()
	locker := connect(t, dsn)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Reads go on; every write to users waits (the job's UPDATE included).
	if _, err := tx.Exec(ctx, "LOCK TABLE users IN EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if res := a.do(t, "POST", fmt.Sprintf("/v1/users/%d/welcome", id), nil); res.status != http.StatusAccepted {
			t.Fatalf("welcome %d during the lock: %d %s", id, res.status, res.body)
		}
	}
	time.Sleep(4 * time.Second) // the lock outlives statement_timeout (2s): attempts fail meanwhile
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	eventually(t, "every welcome applied", func() bool {
		var welcomed, jobs int
		err := conn.QueryRow(ctx, `SELECT (SELECT count(*) FROM users WHERE welcomed_at IS NOT NULL),
			(SELECT count(*) FROM jobs)`).Scan(&welcomed, &jobs)
		return err == nil && welcomed == len(ids) && jobs == 0
	})
	if q, d, r := a.metric(t, m.JobsEnqueuedTotal), a.metric(t, m.JobsDoneTotal), a.metric(t, m.JobsRetriedTotal); q != 10 || d != 10 || r < 1 {
		t.Fatalf("enqueued %v, done %v, retried %v; want 10, 10 and at least one retry (the lock outlived an attempt)", q, d, r)
	}
}

func welcomeState(t *testing.T, conn *pgx.Conn, userID int64) (welcomed bool, pending, attempts int) {
	t.Helper()
	err := conn.QueryRow(context.Background(), `SELECT (SELECT welcomed_at IS NOT NULL FROM users WHERE id = $1),
		(SELECT count(*) FROM jobs WHERE state = 'pending' AND user_id = $1),
		(SELECT COALESCE(sum(attempts), 0) FROM jobs WHERE user_id = $1)`, userID).Scan(&welcomed, &pending, &attempts)
	if err != nil {
		t.Fatal(err)
	}
	return welcomed, pending, attempts
}

// Row 7: a pod stops (crashes) after answering 202 and before its worker
// ran the job; another pod does it.
func TestAdversarialWelcomeAfterCrashDoneByAnotherPod(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	first := startApp(t, appOptions{dsn: dsn})
	u := createUser(t, first, "Crash", "crash@example.com")
	// The worker dies first: nothing in this pod will run the job.
	if err := first.jobs.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if res := first.do(t, "POST", fmt.Sprintf("/v1/users/%d/welcome", u.ID), nil); res.status != http.StatusAccepted {
		t.Fatalf("welcome: %d %s", res.status, res.body)
	}
	if err := stopApp(t, first); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, dsn)
	if welcomed, pending, _ := welcomeState(t, conn, u.ID); welcomed || pending != 1 {
		t.Fatalf("after the crash: welcomed %v, %d pending jobs; want the job stored and not run", welcomed, pending)
	}

	second := startApp(t, appOptions{dsn: dsn})
	eventually(t, "the other pod applies the job", func() bool {
		welcomed, pending, _ := welcomeState(t, conn, u.ID)
		return welcomed && pending == 0
	})
	if d := second.metric(t, m.JobsDoneTotal); d != 1 {
		t.Fatalf("second pod's %s = %v, want 1", m.JobsDoneTotal, d)
	}
}

// Row 7: SIGTERM while a job is in flight (blocked on a row lock) and the
// grace period runs out: the claim is released, nothing is counted as an
// attempt, and the next pod applies it.
func TestAdversarialWelcomeInFlightAtShutdownNotLost(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	first := startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) {
		c.Server.ShutdownGracePeriod = config.D(time.Second)
		c.Database.StatementTimeout = config.D(time.Minute) // the job waits for the lock until cancelled
	}})
	u := createUser(t, first, "Term", "term@example.com")
	ctx := context.Background()
	locker, observer := connect(t, dsn), connect(t, dsn)
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM users WHERE id = $1 FOR UPDATE", u.ID); err != nil {
		t.Fatal(err)
	}
	if res := first.do(t, "POST", fmt.Sprintf("/v1/users/%d/welcome", u.ID), nil); res.status != http.StatusAccepted {
		t.Fatalf("welcome: %d %s", res.status, res.body)
	}
	eventually(t, "the job blocked on the row lock", func() bool { return lockWaiters(t, observer) == 1 })
	// A claimed job is still pending, and the backlog gauges say so.
	eventually(t, "the backlog gauges show the job", func() bool {
		return first.metric(t, m.JobsQueued) == 1 && first.metric(t, m.JobsOldestPendingAge) > 0
	})
	err = stopApp(t, first)
	if err == nil || !strings.Contains(err.Error(), "background jobs") {
		t.Fatalf("Wait = %v; want the grace period to run out on the blocked job", err)
	}
	if welcomed, pending, attempts := welcomeState(t, observer, u.ID); welcomed || pending != 1 || attempts != 0 {
		t.Fatalf("after SIGTERM: welcomed %v, %d pending, %d attempts; want the job back, untouched", welcomed, pending, attempts)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	startApp(t, appOptions{dsn: dsn})
	eventually(t, "the next pod applies the job", func() bool {
		welcomed, pending, _ := welcomeState(t, observer, u.ID)
		return welcomed && pending == 0
	})
}
