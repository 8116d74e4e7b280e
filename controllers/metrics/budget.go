package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// DefaultBudgetBytes is the memory every metrics answer in flight may hold
// at once, across all scrapes and queries, when the operator is not told
// otherwise: a quarter of the manager's 256 Mi limit.
const DefaultBudgetBytes = 64 << 20

// budgetChunk is the unit a read takes from the Budget. Each answer takes
// its first chunk waiting its turn, and the rest only if free at once:
// nothing waits while holding budget, so answers cannot deadlock on it,
// and a pacer-api exposition (tens of KiB) always fits in the first chunk.
const budgetChunk = 64 << 10

// ErrBudget is the error of an answer that would take the operator past
// its budget of metrics answers in flight.
var ErrBudget = errors.New("the operator's memory budget for metrics answers is spent; the answer was not read")

// errTooLarge is the error of an answer larger than its own cap.
var errTooLarge = errors.New("answer too large")

// budgetRefusals counts answers refused for want of budget: a steady rise
// says --metrics-budget-mib is too small for the answers in flight.
var budgetRefusals = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "pacer_metrics_budget_refusals_total",
	Help: "Metrics answers (pod scrapes, Prometheus queries) not read because the operator's --metrics-budget-mib was spent.",
})

func init() { crmetrics.Registry.MustRegister(budgetRefusals) }

// Budget bounds the bytes of metrics answers that every scrape and query
// together hold in memory: many services scraped at once cannot add up
// past it. Safe for concurrent use; nil means no budget.
type Budget struct {
	sem *semaphore.Weighted
}

// NewBudget returns a Budget of size bytes (at least one chunk).
func NewBudget(size int64) *Budget {
	return &Budget{sem: semaphore.NewWeighted(max(size, budgetChunk))}
}

// account is what one answer holds of the Budget, from before its first
// byte is read until what was made of it is dropped. A body may still be
// read on another goroutine (client_golang reads on one of its own) after
// the observation gave up and closed the account: so a mutex, and nothing
// is taken once closed.
type account struct {
	budget  *Budget
	mu      sync.Mutex
	held    int64
	closed  bool
	refused bool // counted once
}

// open takes the first chunk of b for one answer, waiting until it is free
// or ctx ends.
func (b *Budget) open(ctx context.Context) (*account, error) {
	if b == nil {
		return &account{}, nil
	}
	if err := b.sem.Acquire(ctx, budgetChunk); err != nil {
		return nil, err
	}
	return &account{budget: b, held: budgetChunk}, nil
}

// cover makes the account hold at least n bytes, without waiting.
func (a *account) cover(n int64) error {
	if a.budget == nil {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed || a.refused {
		return ErrBudget
	}
	if n <= a.held {
		return nil
	}
	more := (n - a.held + budgetChunk - 1) / budgetChunk * budgetChunk
	if !a.budget.sem.TryAcquire(more) {
		budgetRefusals.Inc()
		a.refused = true
		return ErrBudget
	}
	a.held += more
	return nil
}

// close gives everything back.
func (a *account) close() {
	if a.budget == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closed {
		a.closed = true
		a.budget.sem.Release(a.held)
		a.held = 0
	}
}

// boundedBody reads an answer's decoded bytes (a transport decompresses
// transparently, so this counts what the answer inflates to): it fails
// once they pass limit, or pass what the account may cover.
type boundedBody struct {
	body  io.ReadCloser
	acct  *account
	limit int64
	read  int64
	err   error
}

func (b *boundedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	// One byte past the limit tells a body of exactly limit bytes from a
	// larger one.
	if room := b.limit + 1 - b.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.body.Read(p)
	b.read += int64(n)
	switch {
	case b.read > b.limit:
		b.err = fmt.Errorf("%w: more than %d bytes", errTooLarge, b.limit)
	case b.acct != nil:
		if cerr := b.acct.cover(b.read); cerr != nil {
			b.err = cerr
		}
	}
	if b.err != nil {
		return 0, b.err
	}
	return n, err
}

func (b *boundedBody) Close() error { return b.body.Close() }

// answerBounds are what a request may read: its cap and its account. They
// ride on the request's context to boundedTransport.
type answerBounds struct {
	limit int64
	acct  *account
}

type answerBoundsKey struct{}

func withAnswerBounds(ctx context.Context, b answerBounds) context.Context {
	return context.WithValue(ctx, answerBoundsKey{}, b)
}

// boundedTransport bounds every answer's decoded body by the bounds on its
// request's context, or by fallback when there are none.
type boundedTransport struct {
	next     http.RoundTripper
	fallback int64
}

func (t *boundedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, ok := req.Context().Value(answerBoundsKey{}).(answerBounds)
	if !ok {
		b = answerBounds{limit: t.fallback}
	}
	res.Body = &boundedBody{body: res.Body, acct: b.acct, limit: b.limit}
	return res, nil
}
