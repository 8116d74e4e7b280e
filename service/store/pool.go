package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pacer-dev/pacer/service/config"
)

// PoolConfig builds a pgxpool configuration from the DSN and the database
// section of the config. statement_timeout is set as a runtime parameter so
// that every connection carries it from the start.
func PoolConfig(dsn string, db config.Database) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx errors can quote the DSN; never surface it.
		return nil, fmt.Errorf("database URL is not a valid PostgreSQL connection string")
	}
	cfg.MinConns = db.MinConns
	cfg.MaxConns = db.MaxConns
	cfg.MaxConnLifetime = db.MaxConnLifetime.Duration
	cfg.MaxConnIdleTime = db.MaxConnIdleTime.Duration
	cfg.HealthCheckPeriod = db.HealthCheckPeriod.Duration
	if st := db.StatementTimeout.Duration; st > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = strconv.FormatInt(st.Milliseconds(), 10)
	}
	// Fail fast when the database is unreachable, so requests get a clear
	// 503 rather than waiting for the whole request timeout.
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 3*time.Second {
		cfg.ConnConfig.ConnectTimeout = 3 * time.Second
	}
	return cfg, nil
}

// poolRef is one generation of the pool. Users hold mu for reading while
// they work, so that retiring the pool can wait for them before closing it.
type poolRef struct {
	pool    *pgxpool.Pool
	mu      sync.RWMutex
	retired bool
}

// Pools holds the current pgxpool and swaps it for a new one without failing
// a request: a request pins the pool it started on until it is done, and the
// old pool is closed only once its last user has finished.
type Pools struct {
	current  atomic.Pointer[poolRef]
	swaps    atomic.Int64
	closed   atomic.Bool
	retiring sync.WaitGroup // pools swapped out and not yet closed

	mu      sync.Mutex
	alive   map[*poolRef]struct{}
	retired Stats // counters of closed pools, so totals never go backwards
}

// NewPools starts with pool as the current pool.
func NewPools(pool *pgxpool.Pool) *Pools {
	ref := &poolRef{pool: pool}
	p := &Pools{alive: map[*poolRef]struct{}{ref: {}}}
	p.current.Store(ref)
	return p
}

// use pins the current pool for the duration of fn.
func (p *Pools) use(fn func(*pgxpool.Pool) error) error {
	for {
		ref := p.current.Load()
		ref.mu.RLock()
		if ref.retired {
			ref.mu.RUnlock()
			if p.closed.Load() {
				return errClosed // no new pool will come: do not spin
			}
			// Swapped and closed between Load and RLock: take the new one.
			continue
		}
		err := fn(ref.pool)
		ref.mu.RUnlock()
		return err
	}
}

// Current returns the pool in use now, for callers (migrations, health
// checks) that do not need pinning.
func (p *Pools) Current() *pgxpool.Pool { return p.current.Load().pool }

// errClosed is what a query gets after Close: the process is stopping.
var errClosed = errors.Join(ErrUnavailable, errors.New("database pool closed"))

// Swap makes next the current pool and closes the previous one once every
// request using it has finished. It returns when the old pool is closed or
// ctx ends; in the latter case the old pool is still closed in the
// background.
func (p *Pools) Swap(ctx context.Context, next *pgxpool.Pool) error {
	done := p.Replace(next)
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Replace makes next the current pool before it returns, so that callers
// that serialize their calls (config reloads) know the last one wins; the
// previous pool is closed in the background once its last user finishes,
// and done is closed then.
func (p *Pools) Replace(next *pgxpool.Pool) (done <-chan struct{}) {
	ref := &poolRef{pool: next}
	p.mu.Lock()
	p.alive[ref] = struct{}{}
	p.mu.Unlock()
	old := p.current.Swap(ref)
	p.swaps.Add(1)

	closed := make(chan struct{})
	p.retiring.Add(1)
	go func() {
		defer p.retiring.Done()
		defer close(closed)
		p.retire(old)
	}()
	return closed
}

func (p *Pools) retire(ref *poolRef) {
	ref.mu.Lock() // waits for the requests pinned to this pool
	ref.retired = true
	ref.mu.Unlock()
	final := statsOf(ref.pool)
	ref.pool.Close()
	p.mu.Lock()
	delete(p.alive, ref)
	p.retired.addCounters(final)
	p.mu.Unlock()
}

// Close closes the current pool after its users finish, and waits for the
// pools swapped out before it. Queries after Close fail with ErrUnavailable.
func (p *Pools) Close() {
	p.closed.Store(true)
	p.retire(p.current.Load())
	p.retiring.Wait()
}

// Swaps is the number of pool swaps since start.
func (p *Pools) Swaps() int64 { return p.swaps.Load() }

// Stats sums the statistics of every pool alive (two during a swap), plus
// the counters of pools already closed.
func (p *Pools) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.retired
	s.AcquiredConns, s.IdleConns, s.TotalConns, s.MaxConns = 0, 0, 0, 0
	for ref := range p.alive {
		s.add(statsOf(ref.pool))
	}
	return s
}

// Stats is a snapshot of pgxpool statistics.
type Stats struct {
	AcquiredConns        int32
	IdleConns            int32
	TotalConns           int32
	MaxConns             int32
	AcquireCount         int64
	AcquireDuration      time.Duration
	EmptyAcquireCount    int64
	CanceledAcquireCount int64
}

func statsOf(pool *pgxpool.Pool) Stats {
	st := pool.Stat()
	return Stats{
		AcquiredConns:        st.AcquiredConns(),
		IdleConns:            st.IdleConns(),
		TotalConns:           st.TotalConns(),
		MaxConns:             st.MaxConns(),
		AcquireCount:         st.AcquireCount(),
		AcquireDuration:      st.AcquireDuration(),
		EmptyAcquireCount:    st.EmptyAcquireCount(),
		CanceledAcquireCount: st.CanceledAcquireCount(),
	}
}

func (s *Stats) add(o Stats) {
	s.AcquiredConns += o.AcquiredConns
	s.IdleConns += o.IdleConns
	s.TotalConns += o.TotalConns
	s.MaxConns += o.MaxConns
	s.addCounters(o)
}

func (s *Stats) addCounters(o Stats) {
	s.AcquireCount += o.AcquireCount
	s.AcquireDuration += o.AcquireDuration
	s.EmptyAcquireCount += o.EmptyAcquireCount
	s.CanceledAcquireCount += o.CanceledAcquireCount
}

// Warm opens connections until the current pool holds its MinConns open, and
// reports how many it holds and wants. pgxpool opens them in the background
// once, at start, and gives up on failure; a pod whose pool cannot open them
// (the database's connection limit reached by others) would otherwise take
// load and fail it with 503 from the connections dialled under load.
// Connections are acquired one by one and held until enough exist, so each
// acquire past the idle ones opens a new connection.
func (p *Pools) Warm(ctx context.Context) (have, want int32, err error) {
	pool := p.Current()
	want = min(pool.Config().MinConns, pool.Config().MaxConns)
	have = openConns(pool)
	if have >= want {
		return have, want, nil
	}
	var held []*pgxpool.Conn
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()
	for have < want && int32(len(held)) < want {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return openConns(pool), want, mapError(err)
		}
		held = append(held, c)
		have = openConns(pool)
	}
	return have, want, nil
}

// openConns counts the pool's connections that are open, not being dialled.
func openConns(pool *pgxpool.Pool) int32 {
	st := pool.Stat()
	return st.TotalConns() - st.ConstructingConns()
}
