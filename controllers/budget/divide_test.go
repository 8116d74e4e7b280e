package budget

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// member is a member created i minutes after t0.
func member(name string, i int, min, weight, need int64) Member {
	return Member{Name: name, Created: t0.Add(time.Duration(i) * time.Minute), Min: min, Weight: weight, Need: need}
}

func (m Member) holding(worst, allocated int64) Member {
	m.WorstCase, m.Allocated = worst, allocated
	return m
}

// got is a division as name → {target, allocated, state}.
type got struct {
	Target, Allocated int64
	State             pacerv1.BudgetMemberState
}

func summary(d Division) map[string]got {
	out := map[string]got{}
	for _, s := range d.Shares {
		out[s.Name] = got{s.Target, s.Allocated, s.State}
	}
	return out
}

func TestDivide(t *testing.T) {
	const A, R, L = pacerv1.MemberAdmitted, pacerv1.MemberRefused, pacerv1.MemberLeaving
	tests := []struct {
		name     string
		room     int64
		members  []Member
		want     map[string]got
		wantFree int64
	}{{
		name: "each its minimum and what it needs; the rest stays free",
		room: 100,
		members: []Member{
			member("a", 0, 10, 1, 20).holding(0, 20),
			member("b", 1, 10, 1, 12).holding(0, 12),
		},
		want:     map[string]got{"a": {20, 20, A}, "b": {12, 12, A}},
		wantFree: 68,
	}, {
		name: "both want more than there is: the rest by weight",
		room: 100,
		members: []Member{
			member("a", 0, 10, 3, 1000).holding(0, 0),
			member("b", 1, 10, 1, 1000).holding(0, 0),
		},
		// 80 beyond the minimums: 60 and 20.
		want:     map[string]got{"a": {70, 70, A}, "b": {30, 30, A}},
		wantFree: 0,
	}, {
		name: "a member that needs little lends its share to one that needs more",
		room: 100,
		members: []Member{
			member("idle", 0, 10, 1, 12).holding(12, 12),
			member("busy", 1, 10, 1, 1000).holding(40, 40),
		},
		want:     map[string]got{"idle": {12, 12, A}, "busy": {88, 88, A}},
		wantFree: 0,
	}, {
		name: "giving back: the borrower is cut at once, the lender's grant waits while the borrower's pods hold more",
		room: 100,
		members: []Member{
			member("idle", 0, 10, 1, 1000).holding(12, 12),
			member("busy", 1, 10, 1, 1000).holding(88, 88),
		},
		want:     map[string]got{"idle": {50, 12, A}, "busy": {50, 50, A}},
		wantFree: 0,
	}, {
		name: "giving back, part seen: the lender gets what the borrower's pods no longer hold",
		room: 100,
		members: []Member{
			member("idle", 0, 10, 1, 1000).holding(12, 12),
			member("busy", 1, 10, 1, 1000).holding(70, 50),
		},
		want:     map[string]got{"idle": {50, 30, A}, "busy": {50, 50, A}},
		wantFree: 0,
	}, {
		name: "giving back, seen: the lender gets its share",
		room: 100,
		members: []Member{
			member("idle", 0, 10, 1, 1000).holding(12, 12),
			member("busy", 1, 10, 1, 1000).holding(48, 50),
		},
		want:     map[string]got{"idle": {50, 50, A}, "busy": {50, 50, A}},
		wantFree: 0,
	}, {
		name: "the newest member whose minimum does not fit is refused",
		room: 50,
		members: []Member{
			member("old", 0, 30, 1, 30).holding(30, 30),
			member("new", 2, 30, 1, 30),
			member("small", 1, 10, 1, 10),
		},
		want:     map[string]got{"old": {30, 30, A}, "small": {10, 10, A}, "new": {0, 0, R}},
		wantFree: 10,
	}, {
		name: "a new member's minimum waits for a cut to be seen",
		room: 100,
		members: []Member{
			member("old", 0, 10, 1, 1000).holding(100, 100),
			member("new", 1, 20, 1, 20),
		},
		want:     map[string]got{"old": {80, 80, A}, "new": {20, 0, A}},
		wantFree: 0,
	}, {
		name: "a leaving member's pods keep their room until they are gone",
		room: 100,
		members: []Member{
			{Name: "gone", Leaving: true, WorstCase: 30},
			member("stays", 0, 10, 1, 1000).holding(40, 40),
		},
		want:     map[string]got{"gone": {0, 0, L}, "stays": {70, 70, A}},
		wantFree: 0,
	}, {
		name: "max caps a member even when room is free",
		room: 100,
		members: []Member{
			{Name: "capped", Created: t0, Min: 10, Weight: 1, Max: 25, Need: 1000},
		},
		want:     map[string]got{"capped": {25, 25, A}},
		wantFree: 75,
	}, {
		name: "a budget shrunk under its members: cuts at once, nothing granted",
		room: 40,
		members: []Member{
			member("a", 0, 10, 1, 1000).holding(50, 50),
			member("b", 1, 10, 1, 1000).holding(10, 10),
		},
		want:     map[string]got{"a": {20, 20, A}, "b": {20, 10, A}},
		wantFree: -20,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Divide(tc.room, tc.members)
			if diff := cmp.Diff(tc.want, summary(d)); diff != "" {
				t.Errorf("division (-want +got):\n%s", diff)
			}
			if d.Free != tc.wantFree {
				t.Errorf("free = %d, want %d", d.Free, tc.wantFree)
			}
		})
	}
}

// TestDivideNeverGrantsHeldRoom runs random members through successive
// divisions, each member's pods moving toward its allocation one step at a
// time (as a tuner cutting would): whatever the needs, weights and
// minimums, the room held (each member's allocation or what its pods hold,
// whichever is more) never exceeds the room once it has fitted, and every
// admitted member reaches its target once the pods have followed.
func TestDivideNeverGrantsHeldRoom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		room := int64(20 + rng.IntN(200))
		n := 1 + rng.IntN(5)
		ms := make([]Member, n)
		for i := range ms {
			ms[i] = member(string(rune('a'+i)), i, int64(1+rng.IntN(30)), int64(1+rng.IntN(5)), int64(rng.IntN(150)))
		}
		for step := range 40 {
			if step%7 == 3 { // load moves: needs change
				for i := range ms {
					ms[i].Need = int64(rng.IntN(150))
				}
			}
			d := Divide(room, ms)
			if d.Held > room {
				t.Fatalf("trial %d step %d: held %d > room %d: %+v", trial, step, d.Held, room, d.Shares)
			}
			for i := range ms {
				s := shareOf(d, ms[i].Name)
				ms[i].Allocated = s.Allocated
				// The pods follow: a cut is seen a step later, a grant
				// is used at once.
				if w := ms[i].WorstCase; w > s.Allocated {
					ms[i].WorstCase = max(s.Allocated, w-5)
				} else {
					ms[i].WorstCase = s.Allocated
				}
			}
		}
		var d Division
		for range 3 { // the pods settle within their allocations
			d = Divide(room, ms)
			for i := range ms {
				s := shareOf(d, ms[i].Name)
				ms[i].Allocated = s.Allocated
				ms[i].WorstCase = min(ms[i].WorstCase, s.Allocated)
			}
		}
		for _, s := range d.Shares {
			if s.State == pacerv1.MemberAdmitted && s.Allocated != s.Target {
				t.Fatalf("trial %d: %s settled at %d, target %d", trial, s.Name, s.Allocated, s.Target)
			}
		}
	}
}

func shareOf(d Division, name string) Share {
	for _, s := range d.Shares {
		if s.Name == name {
			return s
		}
	}
	return Share{}
}

// Creation times have a second's resolution: a member admitted before is
// never displaced by a newcomer created in the same second.
func TestDivideKeepsAdmittedMembersAheadOfNewcomers(t *testing.T) {
	old := member("old", 0, 20, 1, 20).holding(20, 20)
	old.Admitted = true
	late := member("late", 0, 20, 1, 20) // same second, a name that sorts first
	got := summary(Divide(30, []Member{old, late}))
	if got["old"].State != pacerv1.MemberAdmitted || got["late"].State != pacerv1.MemberRefused {
		t.Errorf("old %s, late %s; want old admitted, late refused", got["old"].State, got["late"].State)
	}
}

// BenchmarkDivide divides a room among 100 members that all want more.
func BenchmarkDivide(b *testing.B) {
	ms := make([]Member, 100)
	for i := range ms {
		ms[i] = member(fmt.Sprintf("m%03d", i), i, 5, int64(1+i%5), 200).holding(10, 10)
	}
	for b.Loop() {
		Divide(5000, ms)
	}
}
