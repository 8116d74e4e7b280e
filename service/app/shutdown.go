package app

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Wait serves until the start context ends, then shuts down gracefully:
// /readyz turns false, the API keeps serving for drainDelay, in-flight and
// queued requests finish within the grace period, background jobs drain,
// and only then the pool closes. It returns nil on a clean shutdown.
func (a *App) Wait() error {
	var serveErr error
	select {
	case <-a.ctx.Done():
	case serveErr = <-a.serveErr:
		a.log.Error("server failed; shutting down", "err", serveErr)
	}
	return errors.Join(serveErr, a.shutdown())
}

// shutdownTail is the budget of each step after an overrun grace period.
const shutdownTail = 2 * time.Second

func (a *App) shutdown() error {
	cfg := a.reloader.Current()
	a.shuttingDown.Store(true)
	a.log.Info("shutting down", "drain_delay", cfg.Server.DrainDelay.String(),
		"grace_period", cfg.Server.ShutdownGracePeriod.String())
	if d := cfg.Server.DrainDelay.Duration; d > 0 {
		time.Sleep(d)
	}

	grace, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownGracePeriod.Duration)
	defer cancel()
	var errs []error
	// Shutdown closes the listener and waits for every request in a
	// handler, queued ones included.
	if err := a.api.Shutdown(grace); err != nil {
		errs = append(errs, fmt.Errorf("api server: %w", err))
		// Cut what is still open (a client that stopped reading, say), so
		// its handler ends and releases what it holds.
		_ = a.api.Close()
	}
	// Once the grace period is spent, each later step still gets a short
	// budget of its own: an empty job queue or an idle pool then closes at
	// once, and only a step that really fails is reported.
	ctx := grace
	if grace.Err() != nil {
		var cancelTail context.CancelFunc
		ctx, cancelTail = context.WithTimeout(context.Background(), shutdownTail)
		defer cancelTail()
	}
	if err := a.jobs.Drain(ctx); err != nil {
		errs = append(errs, fmt.Errorf("background jobs: %w", err))
	}
	a.stopBackground()
	a.backgroundDone.Wait()
	// Closing the pool waits for its connections; if requests outlived the
	// grace period it would wait for them too, so bound it.
	closed := make(chan struct{})
	go func() {
		a.closeResources()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		errs = append(errs, errors.New("database pool: connections still in use at the end of the grace period"))
	}
	_ = a.admin.Shutdown(ctx)
	if len(errs) > 0 {
		a.log.Error("shutdown incomplete", "err", errors.Join(errs...))
		return errors.Join(errs...)
	}
	a.log.Info("shutdown complete")
	return nil
}
