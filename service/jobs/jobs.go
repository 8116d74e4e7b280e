// Package jobs runs background work (the welcome email stand-in) on a fixed
// set of workers fed by a bounded queue, and drains it on shutdown.
package jobs

import (
	"context"
	"errors"
	"sync"
)

// ErrQueueFull means the job was not accepted; the caller should retry later.
var ErrQueueFull = errors.New("job queue full")

// ErrStopped means the queue no longer accepts jobs (shutting down).
var ErrStopped = errors.New("job queue stopped")

// Job is one unit of background work. Its context ends only if draining
// runs out of time.
type Job func(ctx context.Context) error

// Hooks observe the queue (for metrics and logs).
type Hooks struct {
	Done func(err error) // after each job
}

// Queue is safe for concurrent use.
type Queue struct {
	jobs   chan Job
	hooks  Hooks
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	stopped bool
}

// New starts workers goroutines taking jobs from a queue of depth.
func New(workers, depth int, hooks Hooks) *Queue {
	if hooks.Done == nil {
		hooks.Done = func(error) {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &Queue{jobs: make(chan Job, depth), hooks: hooks, ctx: ctx, cancel: cancel}
	for range workers {
		q.wg.Add(1)
		go q.work()
	}
	return q
}

func (q *Queue) work() {
	defer q.wg.Done()
	for job := range q.jobs {
		q.hooks.Done(job(q.ctx))
	}
}

// Enqueue adds job without blocking.
func (q *Queue) Enqueue(job Job) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.stopped {
		return ErrStopped
	}
	select {
	case q.jobs <- job:
		return nil
	default:
		return ErrQueueFull
	}
}

// Len is the number of jobs waiting.
func (q *Queue) Len() int { return len(q.jobs) }

// Drain stops accepting jobs and waits for the queued ones to finish. If ctx
// ends first, running jobs are cancelled and Drain returns ctx's error.
func (q *Queue) Drain(ctx context.Context) error {
	q.mu.Lock()
	if !q.stopped {
		q.stopped = true
		close(q.jobs)
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
