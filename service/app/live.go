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

	ttl, entries := cfg.Cache.TTL.Duration, cfg.Cache.MaxEntries
	if !cfg.Cache.Enabled() {
		ttl, entries = 0, 0
	}
	a.cache.Configure(ttl, entries, cfg.Server.RequestTimeout.Duration)

	a.logLevel.Set(parseLevel(cfg.Log.Level))
	a.metrics.ConfigGen.Set(float64(cfg.Generation))
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
