package controllers

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

func TestCapToBudgetShrinksThePoolFirstThenTheReplicas(t *testing.T) {
	tests := []struct {
		name              string
		in                pacerv1.Settings
		limit, smallest   int32
		want              pacerv1.Settings
		wantCapped        bool
		wantAskedReplicas int32
	}{
		{"fits: untouched", pacerv1.Settings{Replicas: 3, PoolMaxConns: 3, PoolMinConns: 2}, 12, 2,
			pacerv1.Settings{Replicas: 3, PoolMaxConns: 3, PoolMinConns: 2}, false, 0},
		{"no budget: untouched", pacerv1.Settings{Replicas: 30, PoolMaxConns: 8}, 0, 2,
			pacerv1.Settings{Replicas: 30, PoolMaxConns: 8}, false, 0},
		{"the pool shrinks to what fits with the health pool", pacerv1.Settings{Replicas: 4, PoolMaxConns: 4, PoolMinConns: 4}, 12, 2,
			pacerv1.Settings{Replicas: 4, PoolMaxConns: 2, PoolMinConns: 2}, false, 0},
		{"even the smallest pool does not fit: replicas capped", pacerv1.Settings{Replicas: 5, PoolMaxConns: 4, PoolMinConns: 2}, 12, 2,
			pacerv1.Settings{Replicas: 4, PoolMaxConns: 2, PoolMinConns: 2}, true, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in
			asked, capped := capToBudget(&got, tc.limit, tc.smallest)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
			if capped != tc.wantCapped || asked != tc.wantAskedReplicas {
				t.Errorf("capped = %v (asked %d), want %v (%d)", capped, asked, tc.wantCapped, tc.wantAskedReplicas)
			}
			if tc.limit > 0 && tuning.WorstCaseConnections(got.Replicas, got.PoolMaxConns) > int64(tc.limit) {
				t.Errorf("%d × (%d + 1) exceeds the budget %d", got.Replicas, got.PoolMaxConns, tc.limit)
			}
		})
	}
}
