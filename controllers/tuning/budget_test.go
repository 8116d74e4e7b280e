package tuning

import (
	"testing"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// TestRolloutConnectionsCountsWhatThePodsMayHold: while a pool cut from 11
// to 5 rolls out over 4 pods, a rise to r replicas may hold what each pod
// may: a pod seen since the cut at the larger of the pool it reported and
// 5, an unseen one at 11, a pod added in a later pass at 5 (it mounts the
// new config), one added in the same pass as the cut at 11.
func TestRolloutConnectionsCountsWhatThePodsMayHold(t *testing.T) {
	cur := pacerv1.Settings{Replicas: 4, PoolMaxConns: 5}
	held := func(f func(*Rollout)) Rollout {
		r := Rollout{Replicas: 4, PoolMaxConns: 11}
		f(&r)
		return r
	}
	tests := []struct {
		name string
		held Rollout
		r    int32
		want int64
	}{
		{"nothing seen, the cut written this pass: every pod at 11",
			held(func(*Rollout) {}), 6, 6 * 12},
		{"two pods seen on the new pool",
			held(func(r *Rollout) { r.Switched = map[int32]int32{5: 2} }), 4, 2*6 + 2*12},
		{"a pod mid-swap reports both pools (16): it may hold them",
			held(func(r *Rollout) { r.Switched = map[int32]int32{16: 1, 5: 1} }), 4, 17 + 6 + 2*12},
		{"pods added in a later pass start on the new pool",
			held(func(r *Rollout) { r.Switched, r.FreshPool = map[int32]int32{5: 2}, true }), 7, 2*6 + 2*12 + 3*6},
		{"a fresh pod not seen yet started on the new pool",
			held(func(r *Rollout) { r.Replicas, r.Fresh, r.Switched = 3, 1, map[int32]int32{11: 3} }), 4, 3*12 + 6},
		{"the pod seen on the new pool may be the fresh one: the unseen pod may keep the old pool",
			held(func(r *Rollout) { r.Replicas, r.Fresh, r.Switched = 3, 1, map[int32]int32{5: 1, 11: 2} }), 4, 6 + 2*12 + 12},
		{"a terminating pod keeps the old pool",
			held(func(r *Rollout) { r.Terminating, r.Switched = 1, map[int32]int32{5: 4} }), 4, 4*6 + 12},
	}
	for _, tt := range tests {
		if got := rolloutConnections(cur, tt.held, tt.r); got != tt.want {
			t.Errorf("%s: %d connections, want %d", tt.name, got, tt.want)
		}
	}
}

// TestFitRolloutAddsThePodsTheSwitchedOnesMadeRoomFor: under a budget of
// 57, 4 pods cutting their pool from 11 to 5 leave no room (4 × 12 = 48)
// until some run the new pool; each that does frees 6 connections, and the
// pods added in later passes take 6 each.
func TestFitRolloutAddsThePodsTheSwitchedOnesMadeRoomFor(t *testing.T) {
	p := params{budget: 57}
	cur := pacerv1.Settings{Replicas: 4, PoolMaxConns: 5}
	for _, tt := range []struct {
		switched int32
		want     int32
	}{{0, 5}, {1, 6}, {2, 7}, {3, 8}, {4, 9}} {
		held := Rollout{Replicas: 4, PoolMaxConns: 11, FreshPool: true, Switched: map[int32]int32{5: tt.switched, 11: 4 - tt.switched}}
		next := cur
		next.Replicas = 9
		p.fitRollout(cur, held, &next, map[string]string{})
		if next.Replicas != tt.want {
			t.Errorf("%d of 4 pods switched: replicas %d, want %d", tt.switched, next.Replicas, tt.want)
		}
		if c := rolloutConnections(cur, held, next.Replicas); c > 57 {
			t.Errorf("%d of 4 pods switched: %d pods may hold %d connections, budget 57", tt.switched, next.Replicas, c)
		}
	}
}
