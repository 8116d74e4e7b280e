package store

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// JobWelcome is the kind of the welcome job (the email stand-in).
const JobWelcome = "welcome"

// Job is a claimed row of the jobs table.
type Job struct {
	ID     int64
	Kind   string
	UserID int64
	// Attempt is this attempt's number, 1 for the first.
	Attempt   int
	CreatedAt time.Time
}

// Outcome is what one RunNext did.
type Outcome int

const (
	// NoJob: nothing was due.
	NoJob Outcome = iota
	// JobDone: applied and deleted.
	JobDone
	// JobRetried: the attempt failed and the job waits for its next one.
	JobRetried
	// JobFailed: the last attempt failed; the row stays, state 'failed'.
	JobFailed
)

// ApplyFunc does a job's work inside the transaction that holds its claim.
type ApplyFunc func(ctx context.Context, tx pgx.Tx, job Job) error

// RetryFunc decides, after failed attempt number attempt, whether to try
// again and after how long.
type RetryFunc func(attempt int) (after time.Duration, retry bool)

// maxErrorLen bounds last_error: it is for people reading the table.
const maxErrorLen = 1000

// Jobs is the jobs table (the outbox).
type Jobs struct {
	pools *Pools
}

// NewJobs reads and writes jobs through pools.
func NewJobs(pools *Pools) *Jobs { return &Jobs{pools: pools} }

// EnqueueWelcome stores a welcome job for the user: when it returns nil the
// job is committed. ErrNotFound if the user does not exist.
func (s *Jobs) EnqueueWelcome(ctx context.Context, userID int64) error {
	return s.pools.use(func(p *pgxpool.Pool) error {
		var id int64
		// One statement: the user is checked and the job stored atomically,
		// and a plain read of users never waits for writers' locks.
		err := p.QueryRow(ctx, `INSERT INTO jobs (kind, user_id)
			SELECT $1, id FROM users WHERE id = $2 RETURNING id`, JobWelcome, userID).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		return mapError(err)
	})
}

// RunNext claims the oldest due pending job of one of kinds, skipping jobs
// other workers hold, and applies it in the claiming transaction: on
// success the job is deleted in the same commit. A failed attempt is rolled
// back to a savepoint and recorded (retried later, or kept as failed, as
// retry says). If ctx ends, or the connection breaks, the whole transaction
// rolls back: the claim is released and the job is due again at once, for
// any pod.
func (s *Jobs) RunNext(ctx context.Context, kinds []string, apply ApplyFunc, retry RetryFunc) (Job, Outcome, error) {
	var job Job
	outcome := NoJob
	err := s.pools.use(func(p *pgxpool.Pool) error {
		return pgx.BeginFunc(ctx, p, func(tx pgx.Tx) error {
			outcome = NoJob
			err := tx.QueryRow(ctx, `SELECT id, kind, user_id, attempts + 1, created_at FROM jobs
				WHERE state = 'pending' AND next_attempt_at <= now() AND kind = ANY($1)
				ORDER BY next_attempt_at, id LIMIT 1
				FOR UPDATE SKIP LOCKED`, kinds).Scan(&job.ID, &job.Kind, &job.UserID, &job.Attempt, &job.CreatedAt)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := limitAttempt(ctx, tx); err != nil {
				return err
			}
			applyErr := applyInSavepoint(ctx, tx, job, apply)
			if applyErr == nil {
				outcome = JobDone
				_, err := tx.Exec(ctx, "DELETE FROM jobs WHERE id = $1", job.ID)
				return err
			}
			if ctx.Err() != nil {
				return applyErr // stopping: release the claim, count nothing
			}
			msg := storedError(applyErr)
			if after, again := retry(job.Attempt); again {
				outcome = JobRetried
				_, err = tx.Exec(ctx, `UPDATE jobs SET attempts = $2, last_error = $3,
					next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1`,
					job.ID, job.Attempt, msg, after.Seconds())
			} else {
				outcome = JobFailed
				_, err = tx.Exec(ctx, `UPDATE jobs SET attempts = $2, last_error = $3, state = 'failed',
					finished_at = now() WHERE id = $1`, job.ID, job.Attempt, msg)
			}
			if err != nil {
				return err
			}
			return nil
		})
	})
	if err != nil {
		return job, NoJob, mapError(err)
	}
	return job, outcome, nil
}

// limitAttempt makes PostgreSQL cancel the attempt's statements shortly
// before ctx ends (SET LOCAL statement_timeout, unless a shorter one is in
// effect). A statement cancelled by the database fails inside the
// savepoint and the attempt is recorded, counted and backed off like any
// failure; ctx ending first would roll the whole claim back uncounted (as a
// shutdown does) and make the job due again at once, forever if the
// database never answers in time (statementTimeout 0).
func limitAttempt(ctx context.Context, tx pgx.Tx) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(deadline)
	limit := left - min(attemptMargin, left/2)
	if limit < time.Millisecond {
		return context.DeadlineExceeded
	}
	// Lowered only: a shorter database.statementTimeout still applies.
	ms := limit.Milliseconds()
	_, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true) FROM pg_settings
		WHERE name = 'statement_timeout' AND (setting::bigint = 0 OR setting::bigint > $2)`,
		strconv.FormatInt(ms, 10), ms)
	return err
}

// attemptMargin is how long before its deadline an attempt's statement is
// cancelled by the database, leaving time to record the failure.
const attemptMargin = 1 * time.Second

// storedError is err's text as last_error takes it: valid UTF-8 without
// NUL (PostgreSQL refuses either in text, and the UPDATE recording the
// failure would fail with it), at most maxErrorLen bytes, cut between
// characters.
func storedError(err error) string {
	msg := strings.ToValidUTF8(strings.ReplaceAll(err.Error(), "\x00", ""), "\uFFFD")
	if len(msg) <= maxErrorLen {
		return msg
	}
	n := maxErrorLen
	for n > 0 && !utf8.RuneStart(msg[n]) {
		n--
	}
	return msg[:n]
}

// PurgeFailed deletes up to limit failed jobs that ended more than age
// ago, and returns how many it deleted.
func (s *Jobs) PurgeFailed(ctx context.Context, age time.Duration, limit int) (int64, error) {
	var n int64
	err := s.pools.use(func(p *pgxpool.Pool) error {
		tag, err := p.Exec(ctx, `DELETE FROM jobs WHERE id IN (
			SELECT id FROM jobs WHERE state = 'failed' AND finished_at < now() - make_interval(secs => $1)
			ORDER BY finished_at LIMIT $2)`, age.Seconds(), limit)
		n = tag.RowsAffected()
		return mapError(err)
	})
	return n, err
}

// applyInSavepoint runs apply so that its failure (a statement timeout,
// say) leaves the claiming transaction usable to record the attempt.
func applyInSavepoint(ctx context.Context, tx pgx.Tx, job Job, apply ApplyFunc) error {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return err
	}
	if err := apply(ctx, sp, job); err != nil {
		if rbErr := sp.Rollback(ctx); rbErr != nil {
			return errors.Join(err, rbErr)
		}
		return err
	}
	return sp.Commit(ctx)
}

// Backlog returns the number of pending jobs and the age of the oldest.
func (s *Jobs) Backlog(ctx context.Context) (pending int64, oldest time.Duration, err error) {
	err = s.pools.use(func(p *pgxpool.Pool) error {
		var secs float64
		err := p.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8
			FROM jobs WHERE state = 'pending'`).Scan(&pending, &secs)
		oldest = time.Duration(secs * float64(time.Second))
		return mapError(err)
	})
	return pending, oldest, err
}

// ApplyWelcome records that the user was welcomed. It is idempotent: a
// second run keeps the first time, and a user deleted since is left alone.
func ApplyWelcome(ctx context.Context, tx pgx.Tx, userID int64) error {
	_, err := tx.Exec(ctx, "UPDATE users SET welcomed_at = COALESCE(welcomed_at, now()) WHERE id = $1", userID)
	return mapError(err)
}
