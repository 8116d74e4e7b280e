package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// The generator splits latencies by the X-Cache header: every answer that
// said hit or miss lands in that split, and answers without the header in
// neither.
func TestClosedLoopSplitsHitsAndMisses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hit":
			w.Header().Set("X-Cache", "hit")
		case "/miss":
			w.Header().Set("X-Cache", "miss")
		}
	}))
	defer srv.Close()
	paths := []string{"/hit", "/miss", "/miss", "/none"}
	build := func(c, i int) (*http.Request, error) {
		return http.NewRequest("GET", srv.URL+paths[i%len(paths)], nil)
	}
	const conns, perConn = 2, 400 // every connection sends all of its requests: 100 rounds of the four paths
	r := closedLoop(context.Background(), conns, 0, time.Minute, perConn, build, http.StatusOK)
	if r.Errors != 0 {
		t.Fatalf("%d errors", r.Errors)
	}
	// Without a warm-up every request is measured.
	if hits, misses := r.Hit.Count(), r.Miss.Count(); r.Requests != conns*perConn || hits != conns*perConn/4 || misses != conns*perConn/2 {
		t.Fatalf("%d requests, %d hits, %d misses; want %d, %d, %d (answers without X-Cache in neither)",
			r.Requests, hits, misses, conns*perConn, conns*perConn/4, conns*perConn/2)
	}
	hits, misses := r.Hit.Count(), r.Miss.Count()
	merged := r.merge(r)
	if merged.Hit.Count() != 2*hits || merged.Miss.Count() != 2*misses {
		t.Errorf("merge: %d hits, %d misses, want %d, %d", merged.Hit.Count(), merged.Miss.Count(), 2*hits, 2*misses)
	}
}
