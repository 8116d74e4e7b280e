// Package budget divides a ConnectionBudget's room among the TunedServices
// that share one database (DESIGN.md, Contract 4). Divide is a pure
// function of the members' minimums, weights, needs and what their pods
// hold now; the controller in this package is its only caller and the only
// writer of allocations.
package budget

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Member is what the division knows of one member.
type Member struct {
	Name    string
	Created time.Time
	// Min is the guaranteed minimum, Weight the share of the rest; Max
	// (0: none) caps what the member may be given.
	Min, Weight, Max int64
	// Need is what the member's tuner wants now, health pools included.
	Need int64
	// WorstCase is the most its pods may hold now (surge, terminating
	// pods and pools a rollout has not yet shrunk included).
	WorstCase int64
	// Allocated is the allocation last written; 0 for a new member.
	Allocated int64
	// Admitted says the last division admitted the member: a newcomer
	// never displaces it, whatever the creation times (which have only
	// a second's resolution).
	Admitted bool
	// PerPod is the most one of its pods may hold, and Pods how many
	// exist, for status.
	PerPod int64
	Pods   int32
	// Leaving is a former member whose pods may still hold connections.
	Leaving bool
	// Refused, when set, refuses the member whatever room there is.
	Refused string
}

// Share is one member's part of a division.
type Share struct {
	Name  string
	State pacerv1.BudgetMemberState
	// Guaranteed is the member's minimum (0 unless admitted).
	Guaranteed int64
	// Target is what the division gives it; Allocated is what may be
	// written now: a grant waits until the room it needs is not held.
	Target, Allocated int64
	// WorstCase, PerPod and Pods are as given.
	WorstCase, PerPod int64
	Pods              int32
	// Message says why the member is refused or waits.
	Message string
}

// Division is how the room is divided.
type Division struct {
	// Shares, one per member, in the order of creation.
	Shares []Share
	// Held is what the members hold: for each, its allocation or its worst
	// case, whichever is more.
	Held int64
	// Free is the room less what is held; negative when pods hold more
	// than the room (a budget shrunk under them).
	Free int64
	// Refused names the refused members, for the Overcommitted condition.
	Refused []string
	// Waiting is true when a grant waits on a cut not yet seen.
	Waiting bool
}

// Divide divides room (maxConnections less reserved) among members.
//
// Members are admitted oldest first while their minimums fit (those
// admitted before ahead of newcomers), as a ResourceQuota admits; a member that does not fit is refused and gets
// nothing. Each admitted member's target is its minimum plus a share of
// the rest by weight, capped by its need and its max, so a member that
// needs little leaves room that the others borrow; room nobody needs stays
// free. Cuts are written at once. A grant is written only out of room that
// no member holds, by allocation or by what its pods may hold now: a
// member cut for another is seen within its new allocation before the
// other is given that room.
func Divide(room int64, members []Member) Division {
	ms := slices.Clone(members)
	slices.SortStableFunc(ms, func(a, b Member) int {
		return cmp.Or(-boolCompare(a.Admitted, b.Admitted), a.Created.Compare(b.Created), cmp.Compare(a.Name, b.Name))
	})
	shares := make([]Share, len(ms))
	var sumMin, heldOutside int64
	for i, m := range ms {
		sh := Share{Name: m.Name, WorstCase: m.WorstCase, PerPod: m.PerPod, Pods: m.Pods}
		switch {
		case m.Leaving:
			sh.State = pacerv1.MemberLeaving
			sh.Message = fmt.Sprintf("left the budget; its %d connections are counted until its pods are gone", m.WorstCase)
			heldOutside += m.WorstCase
		case m.Refused != "":
			sh.State, sh.Message = pacerv1.MemberRefused, m.Refused
			heldOutside += m.WorstCase
		case sumMin+m.Min > room:
			sh.State = pacerv1.MemberRefused
			sh.Message = fmt.Sprintf("min %d does not fit: the older members' minimums take %d of the room %d (maxConnections less reserved)", m.Min, sumMin, room)
			heldOutside += m.WorstCase
		default:
			sh.State, sh.Guaranteed, sh.Target = pacerv1.MemberAdmitted, m.Min, m.Min
			sumMin += m.Min
		}
		shares[i] = sh
	}
	fill(shares, ms, room-heldOutside-sumMin)
	return grant(room, shares, ms)
}

// fill gives extra to the admitted members by weight, each up to its
// need and max (water-filling: what one cannot use goes to the others).
func fill(shares []Share, ms []Member, extra int64) {
	for extra > 0 {
		var weights int64
		for i, sh := range shares {
			if sh.State == pacerv1.MemberAdmitted && sh.Target < ceiling(ms[i]) {
				weights += ms[i].Weight
			}
		}
		if weights == 0 {
			return
		}
		given := int64(0)
		for i := range shares {
			sh, m := &shares[i], ms[i]
			if sh.State != pacerv1.MemberAdmitted || sh.Target >= ceiling(m) {
				continue
			}
			part := extra * m.Weight / weights
			if part == 0 && given < extra {
				part = 1 // rounding: the oldest get the last few
			}
			part = min(part, ceiling(m)-sh.Target, extra-given)
			sh.Target += part
			given += part
		}
		extra -= given
		if given == 0 {
			return
		}
	}
}

// ceiling is the most a member's target may reach.
func ceiling(m Member) int64 {
	c := max(m.Need, m.Min)
	if m.Max > 0 {
		c = min(c, max(m.Max, m.Min))
	}
	return c
}

// grant writes cuts at once and grants only out of room nobody holds.
func grant(room int64, shares []Share, ms []Member) Division {
	held := func(i int) int64 {
		sh := shares[i]
		if sh.State == pacerv1.MemberAdmitted {
			return max(sh.Allocated, sh.WorstCase)
		}
		return sh.WorstCase
	}
	for i := range shares {
		if sh := &shares[i]; sh.State == pacerv1.MemberAdmitted {
			sh.Allocated = min(ms[i].Allocated, sh.Target)
		}
	}
	var total int64
	for i := range shares {
		total += held(i)
	}
	d := Division{}
	for i := range shares {
		sh := &shares[i]
		if sh.State != pacerv1.MemberAdmitted || sh.Allocated >= sh.Target {
			continue
		}
		before := held(i)
		free := room - total
		// Raising the allocation up to what the pods already hold costs
		// no room; beyond that it takes free room.
		sh.Allocated = min(sh.Target, max(sh.Allocated, sh.WorstCase)+max(free, 0))
		total += held(i) - before
		if sh.Allocated < sh.Target {
			d.Waiting = true
			sh.Message = fmt.Sprintf("%d of its target %d granted: the rest waits %s",
				sh.Allocated, sh.Target, holders(shares, i))
		}
	}
	for _, sh := range shares {
		if sh.State == pacerv1.MemberRefused {
			d.Refused = append(d.Refused, sh.Name)
		}
	}
	d.Shares, d.Held, d.Free = shares, total, room-total
	return d
}

// holders names the members whose pods hold more than their allocation,
// or that are not admitted and still hold connections.
func holders(shares []Share, except int) string {
	var names []string
	for i, sh := range shares {
		if i == except {
			continue
		}
		if (sh.State == pacerv1.MemberAdmitted && sh.WorstCase > sh.Allocated) ||
			(sh.State != pacerv1.MemberAdmitted && sh.WorstCase > 0) {
			names = append(names, fmt.Sprintf("%s (%d held)", sh.Name, sh.WorstCase))
		}
	}
	if len(names) == 0 {
		return "for free room"
	}
	return "until the pods of " + strings.Join(names, ", ") + " are within their allocations"
}

func boolCompare(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
