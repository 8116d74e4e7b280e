package app

import (
	"fmt"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

func withRedis(c *config.Config) { c.Cache.Redis = &config.Redis{URLEnv: "REDIS_URL"} }

// withRedisPrefix isolates a test's keys: every test database numbers its
// users from 1.
func withRedisPrefix(prefix string) func(*config.Config) {
	return func(c *config.Config) { c.Cache.Redis = &config.Redis{URLEnv: "REDIS_URL", KeyPrefix: prefix} }
}

// TestRedisLayer: two pods share PostgreSQL and Redis; a user read by one
// is served to the other from Redis, and writes reach every reader.
func TestRedisLayer(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	redisURL := testenv.RedisURL(t)
	prefix := withRedisPrefix(fmt.Sprintf("test:%d:", time.Now().UnixNano()))
	a := startApp(t, appOptions{dsn: dsn, env: map[string]string{"REDIS_URL": redisURL}, mutate: prefix})
	b := startApp(t, appOptions{dsn: dsn, env: map[string]string{"REDIS_URL": redisURL}, mutate: prefix})
	u := createUser(t, a, "Rita", "rita@example.com")
	path := fmt.Sprintf("/v1/users/%d", u.ID)

	if res := a.do(t, "GET", path, nil); res.status != 200 {
		t.Fatalf("get via a: %d", res.status)
	}
	if res := b.do(t, "GET", path, nil); res.status != 200 {
		t.Fatalf("get via b: %d", res.status)
	}
	if got := b.metric(t, "pacer_cache_hits_total", `layer="redis"`); got < 1 {
		t.Fatalf("b's redis hits = %v, want the user from Redis", got)
	}
	// Write through a; a reads its write at once.
	a.do(t, "PATCH", path, `{"name":"Rita B."}`)
	var got user
	a.do(t, "GET", path, nil).json(t, &got)
	if got.Name != "Rita B." {
		t.Fatalf("read after write = %q", got.Name)
	}
}

// TestRedisDown: the layer is configured but Redis is unreachable; every
// request is still served and the failures are counted.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{env: map[string]string{"REDIS_URL": "redis://127.0.0.1:1/0"}, mutate: withRedis})
	u := createUser(t, a, "Nora", "nora@example.com")
	for i := range 5 {
		if res := a.do(t, "GET", fmt.Sprintf("/v1/users/%d", u.ID), nil); res.status != 200 {
			t.Fatalf("get %d with Redis down: %d %s", i, res.status, res.body)
		}
		a.do(t, "PATCH", fmt.Sprintf("/v1/users/%d", u.ID), fmt.Sprintf(`{"name":"Nora %d"}`, i))
	}
	if got := a.metric(t, "pacer_cache_errors_total", `layer="redis"`); got < 1 {
		t.Fatalf("cache errors = %v, want Redis failures counted", got)
	}
}
