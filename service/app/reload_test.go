package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// reloadTo writes cfg with the next generation and waits until the app runs it.
func reloadTo(t *testing.T, a *testApp, path string, cfg *config.Config, change func(*config.Config)) {
	t.Helper()
	cfg.Generation++
	change(cfg)
	testenv.WriteConfig(t, path, *cfg)
	gen := float64(cfg.Generation)
	eventually(t, fmt.Sprintf("generation %d in effect", cfg.Generation), func() bool {
		return a.metric(t, "pacer_config_generation") == gen
	})
}

// TestReloadAppliesEveryLiveField changes each live field through the
// watched file and checks its effect, without a restart.
func TestReloadAppliesEveryLiveField(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	cfg := testConfig()
	cfg.Generation = 1
	testenv.WriteConfig(t, path, cfg)
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{configPath: path, dsn: dsn})
	u1 := createUser(t, a, "One", "one@example.com")
	u2 := createUser(t, a, "Two", "two@example.com")
	get := func(u user) response { return a.do(t, "GET", fmt.Sprintf("/v1/users/%d", u.ID), nil) }

	t.Run("workers", func(t *testing.T) {
		reloadTo(t, a, path, &cfg, func(c *config.Config) {
			c.Workers.MaxInFlight, c.Workers.QueueDepth, c.Workers.QueueTimeout = 7, 9, config.D(time.Second)
		})
		if a.metric(t, "pacer_worker_limit") != 7 || a.metric(t, "pacer_queue_depth_limit") != 9 {
			t.Fatal("worker limits not applied")
		}
		if got := a.limiter.Stats().Limits.QueueTimeout; got != time.Second {
			t.Fatalf("queue timeout = %s", got)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.RateLimit.RequestsPerSecond, c.RateLimit.Burst = 0.01, 1 })
		get(u1)
		if res := get(u1); res.status != 429 {
			t.Fatalf("second request with burst 1: %d", res.status)
		}
		reloadTo(t, a, path, &cfg, func(c *config.Config) {
			c.RateLimit.ClientKey, c.RateLimit.Header = config.ClientKeyHeader, "X-Client"
		})
		for _, client := range []string{"a", "b"} {
			if res := a.do(t, "GET", "/v1/users/1", nil, "X-Client", client); res.status == 429 {
				t.Fatalf("client %s limited by another's bucket", client)
			}
		}
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.RateLimit.TrustedProxies = []string{"127.0.0.0/8"} })
		if got := a.settings.Load().Clients.TrustedProxies; len(got) != 1 {
			t.Fatalf("trusted proxies = %v", got)
		}
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.RateLimit.MaxClients = 1 })
		a.do(t, "GET", "/v1/users/1", nil, "X-Client", "c")
		if n := a.metric(t, "pacer_ratelimit_clients"); n != 1 {
			t.Fatalf("clients = %v, want the new bound 1", n)
		}
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.RateLimit.RequestsPerSecond, c.RateLimit.Burst = 0, 0 })
		for range 3 {
			if res := get(u1); res.status != 200 {
				t.Fatalf("rate limiting still on: %d", res.status)
			}
		}
	})
	t.Run("cache", func(t *testing.T) {
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.Cache.MaxEntries = 1 })
		get(u1)
		get(u2)
		if n := a.metric(t, "pacer_cache_entries"); n != 1 {
			t.Fatalf("entries = %v, want the new bound 1", n)
		}
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.Cache.TTL = config.D(0) })
		get(u1)
		if n := a.metric(t, "pacer_cache_entries"); n != 0 {
			t.Fatalf("entries = %v with the cache off", n)
		}
	})
	t.Run("request timeout", func(t *testing.T) {
		reloadTo(t, a, path, &cfg, func(c *config.Config) {
			c.Server.RequestTimeout = config.D(200 * time.Millisecond)
			c.Database.StatementTimeout = config.D(0)
		})
		release := lockUsers(t, dsn) // the read waits until the request timeout
		res := get(u1)
		release()
		if res.status != 504 {
			t.Fatalf("with a 200ms timeout and the table locked: %d", res.status)
		}
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.Server.RequestTimeout = config.D(5 * time.Second) })
		if res := get(u1); res.status != 200 {
			t.Fatalf("timeout restored: %d", res.status)
		}
	})
	t.Run("body limit", func(t *testing.T) {
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.Server.MaxBodyBytes = 20 })
		if res := a.do(t, "POST", "/v1/users", `{"name":"long enough","email":"x@example.com"}`); res.status != 413 {
			t.Fatalf("body over 20 bytes: %d", res.status)
		}
	})
	t.Run("log level", func(t *testing.T) {
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.Log.Level = "warn" })
		if a.logLevel.Level() != slog.LevelWarn {
			t.Fatalf("level = %s", a.logLevel.Level())
		}
	})
	t.Run("database pool", func(t *testing.T) {
		swaps := a.metric(t, "pacer_db_pool_swaps_total") // the request timeout's subtest swapped too
		reloadTo(t, a, path, &cfg, func(c *config.Config) {
			c.Database.MaxConns, c.Database.MinConns = 5, 1
			c.Database.StatementTimeout = config.D(time.Second)
			c.Database.MaxConnLifetime = config.D(time.Hour)
			c.Database.MaxConnIdleTime = config.D(time.Minute)
			c.Database.HealthCheckPeriod = config.D(10 * time.Second)
		})
		eventually(t, "pool swapped", func() bool {
			return a.metric(t, "pacer_db_pool_swaps_total") == swaps+1 && a.metric(t, "pacer_db_pool_max_conns") == 5
		})
		var timeout string
		if err := a.pools.Current().QueryRow(context.Background(), "SHOW statement_timeout").Scan(&timeout); err != nil || timeout != "1s" {
			t.Fatalf("statement_timeout = %q, %v", timeout, err)
		}
		if res := get(u2); res.status != 200 {
			t.Fatalf("after the swap: %d", res.status)
		}
	})
	t.Run("restart-required fields are kept", func(t *testing.T) {
		reloadTo(t, a, path, &cfg, func(c *config.Config) { c.Server.Addr = "127.0.0.1:1" })
		if got := a.Config().Server.Addr; got != "127.0.0.1:0" {
			t.Fatalf("server.addr in effect = %q, want the running one", got)
		}
	})
	t.Run("bad file refused", func(t *testing.T) {
		before := a.metric(t, "pacer_config_reloads_total", `result="failure"`)
		if err := os.WriteFile(path, []byte("workers:\n  maxInFlight: 0\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		eventually(t, "failure counted", func() bool {
			return a.metric(t, "pacer_config_reloads_total", `result="failure"`) == before+1
		})
		if a.metric(t, "pacer_config_generation") != float64(cfg.Generation) || a.metric(t, "pacer_worker_limit") != 7 {
			t.Fatal("a bad file changed the config in effect")
		}
		if res := get(u1); res.status != 413 && res.status != 200 {
			t.Fatalf("serving after a bad file: %d", res.status)
		}
	})
}

// TestConfigMapSymlinkSwap updates the file the way kubelet updates a
// ConfigMap volume: a new timestamped directory and an atomic rename of the
// ..data symlink. The file's own path never sees an event.
func TestConfigMapSymlinkSwap(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := testConfig()
	cfg.Generation = 1
	publish := func(version string) {
		data := filepath.Join(dir, "..data_"+version)
		if err := os.Mkdir(data, 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.WriteConfig(t, filepath.Join(data, "config.yaml"), cfg)
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(filepath.Base(data), tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	publish("1")
	path := filepath.Join(dir, "config.yaml")
	if err := os.Symlink(filepath.Join("..data", "config.yaml"), path); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, appOptions{configPath: path})

	cfg.Generation = 2
	cfg.Workers.MaxInFlight = 3
	publish("2")
	eventually(t, "generation 2 via ..data swap", func() bool { return a.metric(t, "pacer_config_generation") == 2 })
	if a.metric(t, "pacer_worker_limit") != 3 {
		t.Fatal("workers.maxInFlight not applied")
	}
}

// TestSIGHUPReloads changes a file the watcher cannot see (the config path
// is a symlink into another directory), so only SIGHUP can apply it.
func TestSIGHUPReloads(t *testing.T) {
	t.Parallel()
	real := filepath.Join(t.TempDir(), "real.yaml")
	cfg := testConfig()
	cfg.Generation = 1
	testenv.WriteConfig(t, real, cfg)
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.Symlink(real, path); err != nil {
		t.Fatal(err)
	}
	a := startApp(t, appOptions{configPath: path})
	cfg.Generation = 2
	testenv.WriteConfig(t, real, cfg)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "generation 2 after SIGHUP", func() bool { return a.metric(t, "pacer_config_generation") == 2 })
}
