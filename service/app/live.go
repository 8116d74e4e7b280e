package app

import (
	"context"
	"reflect"

	"github.com/pacer-dev/pacer/service/config"
	"github.com/pacer-dev/pacer/service/limiter"
	"github.com/pacer-dev/pacer/service/ratelimit"
	"github.com/pacer-dev/pacer/service/server"
)

// applyLive applies every live field except the database pool.
func (a *App) applyLive(cfg config.Config) {
	w := cfg.Workers
	a.limiter.SetLimits(limiter.Limits{MaxInFlight: w.MaxInFlight, QueueDepth: w.QueueDepth, QueueTimeout: w.QueueTimeout.Duration})

	r := cfg.RateLimit
	a.rateLimiter.SetLimits(ratelimit.Limits{RequestsPerSecond: r.RequestsPerSecond, Burst: r.Burst, MaxClients: r.MaxClients})
	proxies, _ := ratelimit.ParsePrefixes(r.TrustedProxies) // validated by config
	clients := &ratelimit.ClientIdentifier{TrustedProxies: proxies}
	if r.ClientKey == config.ClientKeyHeader {
		clients.Header = r.Header
	}
	a.settings.Store(server.Live{
		RequestTimeout: cfg.Server.RequestTimeout.Duration,
		MaxBodyBytes:   cfg.Server.MaxBodyBytes,
		Clients:        clients,
	})

	a.jobs.SetRetention(cfg.Jobs.Retention.Duration)
	if a.apiConns != nil { // nil on the first call, before the listener exists
		a.apiConns.SetLimits(connLimits(cfg))
	}

	ttl, entries := cfg.Cache.TTL.Duration, cfg.Cache.MaxEntries
	if !cfg.Cache.Enabled() {
		ttl, entries = 0, 0
	}
	a.cache.Configure(ttl, entries, cfg.Server.RequestTimeout.Duration)
	a.cache.LimitFills(fillLimits(cfg))

	a.logLevel.Set(parseLevel(cfg.Log.Level))
	a.metrics.ConfigGen.Set(float64(cfg.Generation))
}

func connLimits(cfg config.Config) server.ConnLimits {
	return server.ConnLimits{Total: cfg.Server.MaxConnections, PerClient: cfg.Server.MaxConnectionsPerClient}
}

// fillLimits gives cache fills a fair share of the database: half the pool,
// so that misses of distinct keys leave the other half to writes and other
// reads (fills are also bounded by the worker slots their callers hold). A
// miss waits for a fill slot no longer than a request waits for a worker
// slot, then gets 503 like a request shed from the queue.
func fillLimits(cfg config.Config) limiter.Limits {
	return limiter.Limits{
		MaxInFlight:  max(1, int(cfg.Database.MaxConns)/2),
		QueueDepth:   cfg.Workers.MaxInFlight, // never binds: each waiter holds a worker slot
		QueueTimeout: cfg.Workers.QueueTimeout.Duration,
	}
}

// applyConfig is the reload path: live fields at once, and a new pool
// (draining the old one) when any pool setting changed.
func (a *App) applyConfig(ctx context.Context, old, next config.Config) error {
	if !reflect.DeepEqual(old.Database, next.Database) {
		pool, err := a.newPool(next.Database)
		if err != nil {
			return err
		}
		a.log.Info("swapping database pool", "min_conns", next.Database.MinConns, "max_conns", next.Database.MaxConns,
			"generation", next.Generation)
		// The new pool is current before Reload returns, and reloads are
		// serialized, so the newest generation's pool wins; the old one
		// closes in the background once its requests finish.
		a.pools.Replace(pool)
	}
	a.applyLive(next)
	return nil
}
