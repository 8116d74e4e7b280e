// Package jobs runs pacer-api's background jobs from a durable outbox in
// PostgreSQL (the jobs table, service/store). Storing a job is a committed
// INSERT, so the API answers 202 only once the job survives any crash;
// workers in every pod claim due jobs with FOR UPDATE SKIP LOCKED, apply
// them in the claiming transaction, and retry failures with exponential
// backoff. Delivery is at least once; the work is idempotent.
package jobs

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pacer-dev/pacer/service/store"
)

// Options tune the workers; zero values take the defaults.
type Options struct {
	// Workers is the number of jobs a pod works on at once (default 2).
	Workers int
	// PollInterval is how often an idle worker looks for due jobs stored
	// by other pods or due for a retry (default 1s). A job stored by this
	// pod wakes a worker at once.
	PollInterval time.Duration
	// BacklogInterval is how often the pending count and the age of the
	// oldest pending job are read for the metrics (default 5s).
	BacklogInterval time.Duration
	// JobTimeout bounds one attempt (default 30s). An attempt that runs out
	// of it fails, is counted and backed off like any failure (the database
	// cancels its statement a moment before: store.RunNext).
	JobTimeout time.Duration
	// Retention is how long a failed (dead) job is kept for inspection
	// before it is purged (default 7 days); SetRetention changes it live.
	Retention time.Duration
	// PurgeInterval is how often failed jobs past the retention are purged
	// (default 60s).
	PurgeInterval time.Duration
	Retry         Retry
	Metrics       Metrics
	Log           *slog.Logger
}

// Metrics count what the workers do.
type Metrics struct {
	Enqueued, Done, Retried, Failed prometheus.Counter
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.BacklogInterval <= 0 {
		o.BacklogInterval = 5 * time.Second
	}
	if o.JobTimeout <= 0 {
		o.JobTimeout = 30 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.PurgeInterval <= 0 {
		o.PurgeInterval = 60 * time.Second
	}
	o.Retry.defaults()
	nop := func(c *prometheus.Counter) {
		if *c == nil {
			*c = prometheus.NewCounter(prometheus.CounterOpts{Name: "nop"})
		}
	}
	nop(&o.Metrics.Enqueued)
	nop(&o.Metrics.Done)
	nop(&o.Metrics.Retried)
	nop(&o.Metrics.Failed)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// kinds are the job kinds this version knows how to apply; a worker never
// claims another kind (one a newer version stored during a rolling update).
var kinds = []string{store.JobWelcome}

func apply(ctx context.Context, tx pgx.Tx, job store.Job) error {
	// The only kind claimed; see kinds.
	return store.ApplyWelcome(ctx, tx, job.UserID)
}

// Queue stores jobs and runs the workers. Safe for concurrent use.
type Queue struct {
	store *store.Jobs
	opts  Options

	wake   chan struct{} // a job was stored here: one idle worker looks now
	stop   chan struct{} // closed by Drain: claim nothing more
	ctx    context.Context
	cancel context.CancelFunc // cancels jobs in flight (drain ran out of time)
	wg     sync.WaitGroup

	mu       sync.Mutex
	started  bool
	draining bool

	pending   atomic.Int64
	oldest    atomic.Int64 // nanoseconds
	retention atomic.Int64 // nanoseconds
}

// New returns a queue over s; Start starts its workers.
func New(s *store.Jobs, opts Options) *Queue {
	opts.defaults()
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{store: s, opts: opts, wake: make(chan struct{}, 1), stop: make(chan struct{}),
		ctx: ctx, cancel: cancel}
	q.SetRetention(opts.Retention)
	return q
}

// SetRetention changes how long failed jobs are kept; d <= 0 keeps the
// current value.
func (q *Queue) SetRetention(d time.Duration) {
	if d > 0 {
		q.retention.Store(int64(d))
	}
}

// Start starts the workers, once the jobs table exists (after the
// migrations). It does nothing after Drain.
func (q *Queue) Start() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.started || q.draining {
		return
	}
	q.started = true
	for range q.opts.Workers {
		q.wg.Add(1)
		go q.work()
	}
	q.wg.Add(1)
	go q.watchBacklog()
	q.wg.Add(1)
	go q.purgeFailed()
}

// Welcome stores a welcome job for the user. When it returns nil the job is
// committed and will run, in this pod or another, even if this one stops
// now. store.ErrNotFound if there is no such user.
func (q *Queue) Welcome(ctx context.Context, userID int64) error {
	if err := q.store.EnqueueWelcome(ctx, userID); err != nil {
		return err
	}
	q.opts.Metrics.Enqueued.Inc()
	select {
	case q.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
	return nil
}

// Pending is the number of pending jobs (every pod's) at the last reading.
func (q *Queue) Pending() int64 { return q.pending.Load() }

// OldestAge is the age of the oldest pending job at the last reading.
func (q *Queue) OldestAge() time.Duration { return time.Duration(q.oldest.Load()) }

// Drain stops claiming jobs and waits for the ones in flight. If ctx ends
// first, they are cancelled: their transactions roll back, which releases
// the claims, so the jobs stay pending for any pod; Drain then returns
// ctx's error. Stored jobs are never lost either way.
func (q *Queue) Drain(ctx context.Context) error {
	q.mu.Lock()
	if !q.draining {
		q.draining = true
		close(q.stop)
	}
	q.mu.Unlock()

	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return ctx.Err()
	}
}

func (q *Queue) work() {
	defer q.wg.Done()
	errWait := q.opts.PollInterval
	for {
		select {
		case <-q.stop:
			return
		default:
		}
		outcome, err := q.runOne()
		wait := q.opts.PollInterval
		switch {
		case err != nil:
			// The database is unreachable, or this job's connection broke:
			// back off so an outage is not hammered (the job stays pending).
			if q.ctx.Err() == nil {
				q.opts.Log.Warn("background job worker: database error; retrying", "err", err, "retry_in", errWait.String())
			}
			wait, errWait = errWait, min(2*errWait, 30*time.Second)
		case outcome != store.NoJob:
			errWait = q.opts.PollInterval
			continue // more may be due
		}
		timer := time.NewTimer(wait)
		select {
		case <-q.stop:
			timer.Stop()
			return
		case <-q.wake:
		case <-timer.C:
		}
		timer.Stop()
	}
}

func (q *Queue) runOne() (store.Outcome, error) {
	ctx, cancel := context.WithTimeout(q.ctx, q.opts.JobTimeout)
	defer cancel()
	var cause error
	job, outcome, err := q.store.RunNext(ctx, kinds, func(ctx context.Context, tx pgx.Tx, job store.Job) error {
		cause = apply(ctx, tx, job)
		return cause
	}, q.opts.Retry.After)
	switch outcome {
	case store.JobDone:
		q.opts.Metrics.Done.Inc()
	case store.JobRetried:
		q.opts.Metrics.Retried.Inc()
		after, _ := q.opts.Retry.After(job.Attempt)
		q.opts.Log.Warn("background job failed; will retry", "job_id", job.ID, "kind", job.Kind,
			"attempt", job.Attempt, "retry_in", after.String(), "err", cause)
	case store.JobFailed:
		q.opts.Metrics.Failed.Inc()
		q.opts.Log.Error("background job failed for the last time; kept as failed", "job_id", job.ID,
			"kind", job.Kind, "attempts", job.Attempt, "err", cause)
	}
	return outcome, err
}

func (q *Queue) watchBacklog() {
	defer q.wg.Done()
	ticker := time.NewTicker(q.opts.BacklogInterval)
	defer ticker.Stop()
	for {
		ctx, cancel := context.WithTimeout(q.ctx, q.opts.BacklogInterval)
		if n, age, err := q.store.Backlog(ctx); err == nil {
			q.pending.Store(n)
			q.oldest.Store(int64(age))
		}
		cancel()
		select {
		case <-q.stop:
			return
		case <-ticker.C:
		}
	}
}

// purgeBatch bounds one DELETE of failed jobs, so that a large purge never
// holds many row locks at once.
const purgeBatch = 1000

// purgeFailed deletes the failed jobs older than the retention, every
// PurgeInterval, in every pod (the deletes are idempotent).
func (q *Queue) purgeFailed() {
	defer q.wg.Done()
	ticker := time.NewTicker(q.opts.PurgeInterval)
	defer ticker.Stop()
	for {
		for {
			ctx, cancel := context.WithTimeout(q.ctx, q.opts.PurgeInterval)
			n, err := q.store.PurgeFailed(ctx, time.Duration(q.retention.Load()), purgeBatch)
			cancel()
			if err != nil && q.ctx.Err() == nil {
				q.opts.Log.Warn("purging failed background jobs", "err", err)
			}
			if n > 0 {
				q.opts.Log.Info("purged failed background jobs past their retention", "count", n)
			}
			if err != nil || n < purgeBatch {
				break
			}
		}
		select {
		case <-q.stop:
			return
		case <-ticker.C:
		}
	}
}
