package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestQueryAfterCloseFailsFast: a query after Pools.Close spun forever
// (the closed pool stayed current and use retried it); now it fails with
// ErrUnavailable.
func TestQueryAfterCloseFailsFast(t *testing.T) {
	users, pools, _ := migratedUsers(t)
	pools.Close()
	done := make(chan error, 1)
	go func() { _, err := users.Get(context.Background(), 1); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get after Close = %v, want ErrUnavailable", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Get after Close did not return (spinning)")
	}
}
