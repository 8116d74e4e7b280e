package main

import (
	"context"
	"net/http"
	_ "net/http/pprof" // profiles on -pprof-addr only

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pacer-dev/pacer/internal/bare"
)

// serveBare serves the baseline (package bare) on addr until ctx ends.
func serveBare(ctx context.Context, addr, pprofAddr, dsn string, maxConns int32) error {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return err
	}
	cfg.MaxConns = maxConns
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	if pprofAddr != "" {
		// Profiles from a separate listener, off the measured path.
		go func() { _ = http.ListenAndServe(pprofAddr, http.DefaultServeMux) }()
	}
	srv := &http.Server{Addr: addr, Handler: bare.Handler(pool)}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		return err
	}
	return nil
}
