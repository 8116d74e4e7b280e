package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/pacer-dev/pacer/service/config"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// applyFunc applies a validated config that differs from old only in live
// fields.
type applyFunc func(ctx context.Context, old, next config.Config) error

// Reloader is the one path by which a new config takes effect, whether a
// file change or SIGHUP asked for it (as alertmanager's coordinator). A bad
// file is refused and the config in effect kept.
type Reloader struct {
	path    string
	getenv  func(string) string
	log     *slog.Logger
	metrics *telemetry.Metrics
	apply   applyFunc

	mu      sync.Mutex
	current config.Config
}

func newReloader(cfg config.Config, path string, getenv func(string) string, log *slog.Logger, m *telemetry.Metrics, apply applyFunc) *Reloader {
	m.ConfigGen.Set(float64(cfg.Generation))
	m.ConfigLastOK.SetToCurrentTime()
	return &Reloader{path: path, getenv: getenv, log: log, metrics: m, apply: apply, current: cfg}
}

// Current returns the config in effect.
func (r *Reloader) Current() config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.current
}

// Reload reads the file and applies it.
func (r *Reloader) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.path == "" {
		r.log.Info("config reload asked for, but no --config file was given: nothing to reload",
			"generation", r.current.Generation)
		return nil
	}
	next, err := loadConfig(r.path, r.getenv)
	if err != nil {
		return r.failed(err)
	}
	if next.Generation < r.current.Generation {
		// An older file (a write torn or rolled back) must not undo a newer
		// config: the operator only ever raises the generation.
		return r.failed(fmt.Errorf("%s: generation %d is older than the %d in effect",
			r.path, next.Generation, r.current.Generation))
	}
	if fields := config.RestartRequired(r.current, next); len(fields) > 0 {
		r.log.Warn("config fields changed that need a restart; keeping the running values until then", "fields", fields)
		next = config.KeepRestartFields(r.current, next)
	}
	if err := r.apply(ctx, r.current, next); err != nil {
		return r.failed(err)
	}
	r.log.Info("config reloaded", "generation", next.Generation, "previous_generation", r.current.Generation)
	r.current = next
	r.metrics.ConfigReloads.WithLabelValues(telemetry.ResultSuccess).Inc()
	r.metrics.ConfigLastOK.SetToCurrentTime()
	r.metrics.ConfigGen.Set(float64(next.Generation))
	return nil
}

func (r *Reloader) failed(err error) error {
	r.metrics.ConfigReloads.WithLabelValues(telemetry.ResultFailure).Inc()
	r.log.Error("config reload refused; keeping the config in effect", "err", err, "generation", r.current.Generation)
	return err
}

// reloadDebounce merges the burst of events one file update makes.
const reloadDebounce = 100 * time.Millisecond

// startWatching starts reloading on file changes and on SIGHUP. Both are
// set up before it returns, so no change made after Start is missed. SIGHUP
// is handled even without a file (a logged no-op): its default action
// would kill the process. The file watch is on the directory, not the
// file: Kubernetes updates a ConfigMap volume by swapping the ..data
// symlink, which a watch on the file itself would never see.
func (r *Reloader) startWatching(ctx context.Context, goBackground func(func())) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	goBackground(func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				_ = r.Reload(ctx) // logged and counted inside
			}
		}
	})
	if r.path == "" {
		return
	}

	dir, base := filepath.Split(r.path)
	if dir == "" {
		dir = "."
	}
	w, err := fsnotify.NewWatcher()
	if err == nil {
		err = w.Add(dir)
	}
	if err != nil {
		r.log.Error("config watch unavailable; SIGHUP still reloads", "err", err, "dir", dir)
		if w != nil {
			_ = w.Close()
		}
		return
	}
	goBackground(func() {
		defer w.Close()
		r.watch(ctx, w, base)
	})
}

func (r *Reloader) watch(ctx context.Context, w *fsnotify.Watcher, base string) {
	pending := time.NewTimer(time.Hour)
	pending.Stop()
	defer pending.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if name := filepath.Base(ev.Name); name == base || name == "..data" {
				pending.Reset(reloadDebounce)
			}
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			r.log.Warn("config watch error", "err", err)
		case <-pending.C:
			_ = r.Reload(ctx) // logged and counted inside
		}
	}
}
