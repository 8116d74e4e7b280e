package app

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
)

// TestReadAfterWriteUnderConcurrentFills: writers update their own user and
// read it back at once, while readers keep cache fills of the same users in
// flight. Every read after a write must see that write, through the local
// cache and the Redis layer.
func TestReadAfterWriteUnderConcurrentFills(t *testing.T) {
	t.Parallel()
	t.Run("local cache", func(t *testing.T) {
		t.Parallel()
		readAfterWrite(t, startApp(t, appOptions{}))
	})
	t.Run("local and Redis", func(t *testing.T) {
		t.Parallel()
		readAfterWrite(t, startApp(t, appOptions{
			env:    map[string]string{"REDIS_URL": testenv.RedisURL(t)},
			mutate: withRedisPrefix(fmt.Sprintf("test:%d:", time.Now().UnixNano())),
		}))
	})
}

func readAfterWrite(t *testing.T, a *testApp) {
	const writers, rounds = 4, 40
	ids := make([]int64, writers)
	for w := range ids {
		ids[w] = createUser(t, a, "v0", fmt.Sprintf("w%d@example.com", w)).ID
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; i < 100_000; i++ { // bounded
				select {
				case <-stop:
					return
				default:
				}
				a.do(t, "GET", fmt.Sprintf("/v1/users/%d", ids[(r+i)%writers]), nil)
			}
		}()
	}
	var writersDone sync.WaitGroup
	for w := range writers {
		writersDone.Add(1)
		go func() {
			defer writersDone.Done()
			path := fmt.Sprintf("/v1/users/%d", ids[w])
			for i := 1; i <= rounds; i++ {
				name := fmt.Sprintf("v%d", i)
				if res := a.do(t, "PATCH", path, fmt.Sprintf(`{"name":%q}`, name)); res.status != 200 {
					t.Errorf("patch: %d %s", res.status, res.body)
					return
				}
				var got user
				a.do(t, "GET", path, nil).json(t, &got)
				if got.Name != name {
					t.Errorf("user %d: read after writing %q returned %q", ids[w], name, got.Name)
					return
				}
			}
		}()
	}
	writersDone.Wait()
	close(stop)
	readers.Wait()
}
