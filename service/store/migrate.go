package store

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLockKey is the pg_advisory_lock key that serialises migrations, so
// that many pods starting at once apply each migration exactly once.
const migrationLockKey int64 = 0x7061636572 // "pacer"

// Migrate applies the embedded migrations not yet recorded in
// schema_migrations, each in its own transaction, while holding a
// session-level advisory lock. It returns the number applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool) (int, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()

	// The pool's statement_timeout is sized for requests. Waiting for another
	// pod's migrations (the advisory lock) or a long DDL must not be
	// cancelled by it: lift it, and lock_timeout, for this session only; ctx
	// still bounds the whole run. The connection goes back to the pool with
	// its settings restored, or is closed (and so discarded) if that fails.
	if _, err := conn.Exec(ctx, "SET statement_timeout = 0; SET lock_timeout = 0"); err != nil {
		return 0, fmt.Errorf("migrate: lift statement_timeout: %w", err)
	}
	defer func() {
		rctx := context.WithoutCancel(ctx)
		if _, err := conn.Exec(rctx, "RESET statement_timeout; RESET lock_timeout"); err != nil {
			_ = conn.Conn().Close(rctx)
		}
	}()

	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
		return 0, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// Unlock on a fresh context: the caller's may be cancelled already.
		// If unlocking fails the connection is broken and the session lock
		// died with it.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    text PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return 0, fmt.Errorf("migrate: create schema_migrations: %w", err)
	}

	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return 0, err
	}
	sort.Strings(names)
	applied := 0
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
		var done bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&done); err != nil {
			return applied, fmt.Errorf("migrate: check %s: %w", version, err)
		}
		if done {
			continue
		}
		sql, err := migrationFiles.ReadFile(name)
		if err != nil {
			return applied, err
		}
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, string(sql)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", version)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("migrate: apply %s: %w", version, err)
		}
		applied++
	}
	return applied, nil
}
