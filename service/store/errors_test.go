package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// silentServer accepts connections and never answers, like a database host
// whose packets are dropped after the handshake: connecting times out.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	return ln.Addr().String()
}

// connectTimeoutError is what pgx returns when a connection attempt runs out
// of connect_timeout: a *pgconn.ConnectError that wraps DeadlineExceeded.
func connectTimeoutError(t *testing.T) (direct, viaPool error) {
	t.Helper()
	dsn := "postgres://pacer@" + silentServer(t) + "/pacer?sslmode=disable"
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnectTimeout = 10 * time.Millisecond
	_, direct = pgconn.ConnectConfig(context.Background(), cfg)

	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.MinConns = 0
	pcfg.ConnConfig.ConnectTimeout = 10 * time.Millisecond
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	conn, viaPool := pool.Acquire(context.Background())
	if viaPool == nil {
		conn.Release()
	}
	return direct, viaPool
}

func TestMapErrorClassifiesConnectFailuresAsUnavailable(t *testing.T) {
	direct, viaPool := connectTimeoutError(t)
	for _, err := range []error{direct, viaPool} {
		var ce *pgconn.ConnectError
		if !errors.As(err, &ce) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("precondition: want a ConnectError wrapping DeadlineExceeded, got %T %v", err, err)
		}
	}

	refusedLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := refusedLn.Addr().String()
	refusedLn.Close()
	_, refusedErr := pgconn.Connect(context.Background(), "postgres://pacer@"+refused+"/pacer?sslmode=disable&connect_timeout=5")
	if refusedErr == nil {
		t.Fatal("precondition: connecting to a closed port succeeded")
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	cfg, _ := pgconn.ParseConfig("postgres://pacer@" + silentServer(t) + "/pacer?sslmode=disable")
	_, cancelledErr := pgconn.ConnectConfig(cancelled, cfg)
	if !errors.Is(cancelledErr, context.Canceled) {
		t.Fatalf("precondition: connecting with a cancelled context = %v", cancelledErr)
	}

	tests := []struct {
		name string
		err  error
		want error
	}{
		{"connect timeout", direct, ErrUnavailable},
		{"connect timeout via pool acquire", viaPool, ErrUnavailable},
		{"connect timeout, wrapped", fmt.Errorf("get user: %w", direct), ErrUnavailable},
		{"connection refused", refusedErr, ErrUnavailable},
		{"request deadline", context.DeadlineExceeded, ErrTimeout},
		{"request deadline, wrapped", fmt.Errorf("query: %w", context.DeadlineExceeded), ErrTimeout},
		{"caller cancelled while connecting", cancelledErr, ErrTimeout},
		{"statement_timeout", &pgconn.PgError{Code: codeQueryCanceled}, ErrTimeout},
		{"admin shutdown", &pgconn.PgError{Code: codeAdminShutdown}, ErrUnavailable},
		{"cannot connect now", &pgconn.PgError{Code: codeCannotConnect}, ErrUnavailable},
		{"broken connection", errors.New("unexpected EOF"), ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.err)
			if !errors.Is(got, tt.want) {
				t.Fatalf("mapError(%v) = %v, want %v", tt.err, got, tt.want)
			}
			other := ErrTimeout
			if tt.want == ErrTimeout {
				other = ErrUnavailable
			}
			if errors.Is(got, other) {
				t.Fatalf("mapError(%v) = %v, is both %v and %v", tt.err, got, tt.want, other)
			}
			if !errors.Is(got, tt.err) {
				t.Fatalf("mapError dropped the original error %v from the chain", tt.err)
			}
		})
	}
}
