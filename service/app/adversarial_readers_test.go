package app

import (
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/service/config"
)

// Issue 20, "pacer-api slow readers": as many clients as there are worker
// slots, each pipelining large answers and never reading them, held every
// slot until the request deadline fired, so every other request got 503
// (and reconnecting kept it so). Now a slot is released once the answer is
// rendered; the write happens outside the worker limit. Not parallel: it
// counts the process's blocked writers.
func TestAdversarialNeverReadingClientsLeaveSlotsFree(t *testing.T) {
	const workers = 4
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.Workers.MaxInFlight, c.Workers.QueueDepth = workers, 0 // a busy slot is a 503 at once
		c.Server.RequestTimeout = config.D(30 * time.Second)     // no deadline fires during the test
	}})
	seedUsers(t, a, 1000)
	heap0, goroutines0 := heapInUse(), runtime.NumGoroutine()
	for range workers {
		stalledReader(t, a.api, "/v1/users?limit=1000", 64)
	}
	// Every stalled connection is stuck writing an answer: before the fix
	// from inside its worker slot, now outside it.
	eventually(t, "every never-reading client blocks a write", func() bool {
		return blockedHTTPWriters() >= workers
	})
	for i := range 20 {
		if res := a.do(t, "GET", "/v1/users?limit=1", nil); res.status != http.StatusOK {
			t.Fatalf("request %d while %d clients never read: %d %s", i, workers, res.status, res.body)
		}
	}
	// What a never-reading client costs (client and server share the
	// process, so this includes the client's side of the connection).
	heap, goroutines := heapInUse(), runtime.NumGoroutine()
	t.Logf("%d never-reading clients of %d-byte answers: %.0f KiB of heap and %.1f goroutines each",
		workers, len(a.do(t, "GET", "/v1/users?limit=1000", nil).body),
		float64(heap-heap0)/workers/1024, float64(goroutines-goroutines0)/workers)
}

// heapInUse is the heap in use after a collection.
func heapInUse() int64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// blockedHTTPWriters counts the goroutines of net/http connections blocked
// writing to their socket.
func blockedHTTPWriters() int {
	buf := make([]byte, 8<<20)
	buf = buf[:runtime.Stack(buf, true)]
	n := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "net/http.(*conn).serve") && strings.Contains(g, "internal/poll.(*FD).Write") {
			n++
		}
	}
	return n
}
