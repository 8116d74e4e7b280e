// Package testenv gives tests the real services the hack scripts start
// (hack/postgres.sh, hack/redis.sh) and isolates tests that share them.
//
// A test that needs a service it cannot find is skipped with a message on a
// developer machine and fails in CI (CI=true), so a CI run can never pass by
// silently skipping the tests that matter.
package testenv

import (
	"os"
	"testing"
)

// Environment variables that point tests at the services.
const (
	DatabaseURLEnv = "PACER_TEST_DATABASE_URL"
	RedisURLEnv    = "PACER_TEST_REDIS_URL"
)

// DatabaseURL returns the test PostgreSQL DSN, or skips (fails in CI).
func DatabaseURL(t testing.TB) string {
	t.Helper()
	return require(t, DatabaseURLEnv, "hack/postgres.sh")
}

// RedisURL returns the test Redis URL, or skips (fails in CI).
func RedisURL(t testing.TB) string {
	t.Helper()
	return require(t, RedisURLEnv, "hack/redis.sh")
}

func require(t testing.TB, env, script string) string {
	t.Helper()
	if v := os.Getenv(env); v != "" {
		return v
	}
	msg := env + " is not set; run `export " + env + "=$(" + script + ")`"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
