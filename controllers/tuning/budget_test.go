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
		next := cur
		next.Replicas = tt.r
		if got := rolloutConnections(cur, tt.held, next); got != tt.want {
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
		// What they may hold: the switched pods and the added ones at 5,
		// the others at 11.
		if c := int64(tt.switched+next.Replicas-4)*6 + int64(4-tt.switched)*12; c > 57 {
			t.Errorf("%d of 4 pods switched: %d pods may hold %d connections, budget 57", tt.switched, next.Replicas, c)
		}
	}
}

// TestFitRolloutHoldsAPoolRaiseBelowTheOldPool: 5 pods cut their pool from
// 20 to 10 and 3 more followed once 3 of the 5 were seen on 10 (3 × 11 +
// 2 × 21 + 3 × 11 = 108 of a budget of 110). A raise to 12 now, still
// under the old pool, reaches the 6 pods on 10 while 2 may keep 20: 6 × 13
// + 2 × 21 = 120. It waits: the pool rises only as far as fits.
func TestFitRolloutHoldsAPoolRaiseBelowTheOldPool(t *testing.T) {
	p := params{budget: 110}
	cur := pacerv1.Settings{Replicas: 8, PoolMaxConns: 10}
	held := Rollout{Replicas: 5, PoolMaxConns: 20, Fresh: 3, FreshPool: true, Switched: map[int32]int32{10: 3, 20: 2}}
	next := cur
	next.PoolMaxConns = 12
	p.fitRollout(cur, held, &next, map[string]string{})
	if next.PoolMaxConns != 10 {
		t.Fatalf("poolMaxConns %d, want 10 (the raise waits: 6 pods × 13 + 2 × 21 = 120 > 110)", next.PoolMaxConns)
	}
	// One decision that raises the pool and adds pods: the added pods may
	// run the raised pool.
	next = cur
	next.Replicas, next.PoolMaxConns = 9, 11
	if c, want := rolloutConnections(cur, held, next), int64(3*12+2*21+3*12+12); c < want {
		t.Fatalf("rise to 9 pods at pool 11 counted at %d connections, want at least %d", c, want)
	}
}
