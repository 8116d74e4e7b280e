package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pacer-dev/pacer/internal/bare"
	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/cache"
	"github.com/pacer-dev/pacer/service/jobs"
	"github.com/pacer-dev/pacer/service/limiter"
	"github.com/pacer-dev/pacer/service/ratelimit"
	"github.com/pacer-dev/pacer/service/store"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// BenchmarkGetUserUncached reads one user by id through the whole API
// handler with the cache off (every read a PostgreSQL query, as the
// "uncached" row of hack/bench-service.sh), and through a bare handler
// doing the same query and encoding/json (the loadgen baseline), in the
// same process against the same database. Compare allocations and, with
// -cpuprofile, where the handler's CPU goes; cpu-µs/op is the process's CPU
// per read (user and system, GC included):
//
//	go test -run '^$' -bench GetUserUncached -benchmem -count 6 ./service/server/
func BenchmarkGetUserUncached(b *testing.B) {
	ctx := context.Background()
	dsn := testenv.FreshDatabase(b)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	const users = 1000
	if _, err := pool.Exec(ctx, `INSERT INTO users (name, email)
		SELECT 'User ' || i, 'user' || i || '@example.com' FROM generate_series(1, $1::int) AS i`, users); err != nil {
		b.Fatal(err)
	}
	pools := store.NewPools(pool)
	m := telemetry.New()
	handlers := map[string]http.Handler{
		"pacer-api": NewServer(Deps{
			Logger:      slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
			Users:       store.NewUsers(pools),
			Cache:       cache.New(cache.Options{Metrics: m.Cache}), // TTL 0: off
			Limiter:     limiter.New(limiter.Limits{MaxInFlight: 64, QueueDepth: 256, QueueTimeout: 250 * time.Millisecond}),
			RateLimiter: ratelimit.New(ratelimit.Limits{}),
			Jobs:        jobs.New(store.NewJobs(pools), jobs.Options{Log: slog.New(slog.DiscardHandler), Metrics: m.Jobs}),
			Metrics:     m,
			Settings:    NewSettings(Live{RequestTimeout: 5 * time.Second, MaxBodyBytes: 1 << 20}),
			Migrated:    func() bool { return true },
		}),
		"bare": bare.Handler(pool),
	}
	for _, name := range []string{"bare", "pacer-api"} {
		h := handlers[name]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(8) // 16 requests in flight on 2 cores, like a loaded pod
			var n atomic.Int64
			deadlines := NewRequestDeadlines()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				// One keep-alive connection per goroutine, with the context
				// net/http would give it (tracked, as pacer-api's server is).
				client, server := net.Pipe()
				defer client.Close()
				defer deadlines.close(server, true)
				connCtx := deadlines.open(ctx, server)
				for pb.Next() {
					i := n.Add(1)
					// A cancellable context per request, as net/http gives one:
					// pgx then watches it for both handlers alike.
					rctx, cancel := context.WithCancel(connCtx)
					req := httptest.NewRequestWithContext(rctx, http.MethodGet, "/v1/users/"+strconv.FormatInt(1+i%users, 10), nil)
					w := httptest.NewRecorder()
					h.ServeHTTP(w, req)
					cancel()
					if w.Code != http.StatusOK {
						b.Errorf("%s: %d %s", name, w.Code, w.Body)
						return
					}
				}
			})
			// CPU of this process (user + system, GC included) per read: the
			// figure hack/bench-service.sh reads from /proc, without the
			// network and the load generator.
			b.ReportMetric(float64(processCPU()-cpu)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
