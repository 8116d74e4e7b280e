package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
	"golang.org/x/time/rate"

	"github.com/pacer-dev/pacer/service/cache"
	"github.com/pacer-dev/pacer/service/config"
	"github.com/pacer-dev/pacer/service/jobs"
	"github.com/pacer-dev/pacer/service/limiter"
	m "github.com/pacer-dev/pacer/service/metrics"
	"github.com/pacer-dev/pacer/service/ratelimit"
	"github.com/pacer-dev/pacer/service/server"
	"github.com/pacer-dev/pacer/service/store"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// Options configure Start.
type Options struct {
	// Config is the initial configuration, already validated.
	Config config.Config
	// ConfigPath, when set, is watched and reloaded on change and SIGHUP.
	ConfigPath string
	Getenv     func(string) string
	LogOutput  io.Writer
}

// App is a running pacer-api.
type App struct {
	log      *slog.Logger
	logLevel *slog.LevelVar
	getenv   func(string) string
	metrics  *telemetry.Metrics

	dsn         string
	pools       *store.Pools
	health      *pgxpool.Pool // readiness only: one connection, never busy
	users       *store.Users
	redis       *redis.Client
	cache       *cache.Cache
	limiter     *limiter.Limiter
	rateLimiter *ratelimit.Limiter
	jobs        *jobs.Queue
	settings    *server.Settings
	reloader    *Reloader

	api, admin     *http.Server
	apiLn, adminLn net.Listener
	apiConns       *server.ConnLimiter // the API listener's connection caps
	migrated       atomic.Bool
	poolWarmed     atomic.Bool        // the request pool has held its minConns once
	warmup         singleflight.Group // one pool warm-up at a time (admin.go)
	readyLog       rate.Sometimes     // why /readyz is false, at most every 10 s
	shuttingDown   atomic.Bool
	ctx            context.Context
	serveErr       chan error
	backgroundDone sync.WaitGroup
	stopBackground context.CancelFunc
}

// Start builds every component, binds both listeners and starts serving.
// Migrations run in the background (retried until the database answers);
// the API answers 503 and /readyz is false until they are done. The app
// shuts down gracefully when ctx ends; Wait returns then.
func Start(ctx context.Context, opts Options) (*App, error) {
	cfg := opts.Config
	a := &App{getenv: opts.Getenv, logLevel: new(slog.LevelVar), ctx: ctx, serveErr: make(chan error, 2),
		readyLog: rate.Sometimes{First: 1, Interval: 10 * time.Second}}
	if opts.LogOutput == nil {
		opts.LogOutput = os.Stderr
	}
	a.logLevel.Set(parseLevel(cfg.Log.Level))
	a.log = newLogger(opts.LogOutput, cfg.Log.Format, a.logLevel)
	a.metrics = telemetry.New()

	a.dsn = opts.Getenv(cfg.Database.URLEnv)
	if a.dsn == "" {
		return nil, fmt.Errorf("database.urlEnv: environment variable %s is not set; it must hold the PostgreSQL URL", cfg.Database.URLEnv)
	}
	pool, err := a.newPool(cfg.Database)
	if err != nil {
		return nil, err
	}
	a.pools = store.NewPools(pool)
	a.users = store.NewUsers(a.pools)
	if a.health, err = a.newHealthPool(cfg.Database); err != nil {
		pool.Close()
		return nil, err
	}

	var remote cache.Remote
	if r := cfg.Cache.Redis; r != nil {
		url := opts.Getenv(r.URLEnv)
		if url == "" {
			a.closeResources()
			return nil, fmt.Errorf("cache.redis.urlEnv: environment variable %s is not set; it must hold the Redis URL", r.URLEnv)
		}
		ropts, err := cache.RedisOptions(url)
		if err != nil {
			a.closeResources()
			return nil, fmt.Errorf("cache.redis.urlEnv: %s: %w", r.URLEnv, err)
		}
		// go-redis logs dial failures itself; route them to our logger at
		// debug level (failures are counted and warned about below).
		redis.SetLogger(redisLogger{a.log})
		a.redis = redis.NewClient(ropts)
		remote = cache.NewRedis(a.redis, r.Prefix())
	}
	var lastRedisLog atomic.Int64
	a.cache = cache.New(cache.Options{
		Remote:  remote,
		Metrics: a.metrics.Cache,
		OnRemoteError: func(err error) {
			// At most one line a minute: an outage must not flood the logs.
			if now := time.Now().Unix(); now-lastRedisLog.Load() >= 60 {
				lastRedisLog.Store(now)
				a.log.Warn("redis cache layer failing; serving from the database", "err", err)
			}
		},
	})
	a.limiter = limiter.New(limiter.Limits{})
	a.rateLimiter = ratelimit.New(ratelimit.Limits{})
	a.settings = server.NewSettings(server.Live{})
	a.jobs = jobs.New(store.NewJobs(a.pools), jobs.Options{Log: a.log, Metrics: a.metrics.Jobs})
	a.applyLive(cfg)
	if err := a.metrics.RegisterSources(telemetry.Sources{
		Limiter:        a.limiter.Stats,
		CacheEntries:   a.cache.Len,
		CacheFills:     a.cache.FillStats,
		RateLimitUsers: a.rateLimiter.Clients,
		JobsPending:    a.jobs.Pending,
		JobsOldestAge:  a.jobs.OldestAge,
		Pool:           a.pools.Stats,
		PoolSwaps:      a.pools.Swaps,
	}); err != nil {
		a.closeResources()
		return nil, err
	}
	a.reloader = newReloader(cfg, opts.ConfigPath, opts.Getenv, a.log, a.metrics, a.applyConfig)

	if err := a.listen(cfg); err != nil {
		a.closeResources()
		return nil, err
	}

	bgCtx, cancel := context.WithCancel(context.Background())
	a.stopBackground = cancel
	a.goBackground(func() { a.migrate(bgCtx) })
	a.reloader.startWatching(bgCtx, a.goBackground)

	go a.serve(a.api, a.apiLn)
	go a.serve(a.admin, a.adminLn)
	a.log.Info("pacer-api started", "addr", a.apiLn.Addr().String(), "admin_addr", a.adminLn.Addr().String(),
		"generation", cfg.Generation, "config", opts.ConfigPath)
	return a, nil
}

func (a *App) goBackground(fn func()) {
	a.backgroundDone.Add(1)
	go func() {
		defer a.backgroundDone.Done()
		fn()
	}()
}

func (a *App) newPool(db config.Database) (*pgxpool.Pool, error) {
	pcfg, err := store.PoolConfig(a.dsn, db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", "database.urlEnv", err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("database pool: %w", err)
	}
	return pool, nil
}

// newHealthPool is a pool of one connection for /readyz alone: readiness
// asks "can this pod reach PostgreSQL", and must not depend on winning a
// connection from the request pool, which slow queries may have taken
// (every busy pod would then leave rotation at once). pgxpool reconnects it
// after an outage.
func (a *App) newHealthPool(db config.Database) (*pgxpool.Pool, error) {
	pcfg, err := store.PoolConfig(a.dsn, db)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", "database.urlEnv", err)
	}
	pcfg.MinConns, pcfg.MaxConns = 0, 1
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("database health pool: %w", err)
	}
	return pool, nil
}

// headerLimit bounds request headers, URL included (net/http's default is
// 1 MiB): an ids list of 100 ids is under 2 KiB.
const headerLimit = 64 << 10

func (a *App) listen(cfg config.Config) error {
	var err error
	if a.apiLn, err = net.Listen("tcp", cfg.Server.Addr); err != nil {
		return fmt.Errorf("server.addr: %w", err)
	}
	a.apiConns = server.LimitConns(a.apiLn, connLimits(cfg), a.metrics.RefusedConns)
	a.metrics.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: m.OpenConnections, Help: "Open API connections.",
	}, func() float64 { return float64(a.apiConns.Open()) }))
	a.apiLn = server.CountStalls(a.apiConns, a.metrics.WriteStalls)
	if a.adminLn, err = net.Listen("tcp", cfg.Server.AdminAddr); err != nil {
		a.apiLn.Close()
		return fmt.Errorf("server.adminAddr: %w", err)
	}
	handler := server.NewServer(server.Deps{
		Logger:      a.log,
		Users:       a.users,
		Cache:       a.cache,
		Limiter:     a.limiter,
		RateLimiter: a.rateLimiter,
		Jobs:        a.jobs,
		Metrics:     a.metrics,
		Settings:    a.settings,
		Migrated:    a.migrated.Load,
	})
	a.api = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    headerLimit,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	// The request timeout, enforced per connection (no timer per request).
	server.NewRequestDeadlines().Track(a.api)
	a.admin = &http.Server{
		Handler:           a.adminHandler(cfg.Server.EnablePprof),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    headerLimit,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	return nil
}

func (a *App) serve(srv *http.Server, ln net.Listener) {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		a.serveErr <- err
	}
}

// APIAddr and AdminAddr are the bound addresses (useful with port 0).
func (a *App) APIAddr() string   { return a.apiLn.Addr().String() }
func (a *App) AdminAddr() string { return a.adminLn.Addr().String() }

// Reload re-reads the config file, as a change or SIGHUP does.
func (a *App) Reload(ctx context.Context) error { return a.reloader.Reload(ctx) }

// Config returns the configuration in effect.
func (a *App) Config() config.Config { return a.reloader.Current() }

// migrate applies migrations, retrying while the database is unreachable.
func (a *App) migrate(ctx context.Context) {
	backoff := 250 * time.Millisecond
	for {
		n, err := store.Migrate(ctx, a.pools.Current())
		if err == nil {
			a.migrated.Store(true)
			a.log.Info("database schema ready", "migrations_applied", n)
			a.jobs.Start() // the jobs table exists now
			return
		}
		a.log.Warn("migrations failed; retrying", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (a *App) closeResources() {
	a.pools.Close()
	if a.health != nil {
		a.health.Close()
	}
	if a.redis != nil {
		_ = a.redis.Close()
	}
}

// redisLogger adapts go-redis's internal logging to slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
