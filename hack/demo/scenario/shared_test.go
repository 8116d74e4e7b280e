package scenario

import (
	"encoding/xml"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sample builds a SharedSample at t seconds with the members' open
// connections and allocations.
func sample(t float64, steadyOpen, spikyOpen int, steadyAlloc, spikyAlloc int32) SharedSample {
	return SharedSample{
		Seconds:   t,
		Open:      map[string]int{SharedSteady: steadyOpen, SharedSpiky: spikyOpen},
		Total:     steadyOpen + spikyOpen,
		Allocated: map[string]int32{SharedSteady: steadyAlloc, SharedSpiky: spikyAlloc},
	}
}

func TestOverBudgetFindsEverySampleOverTheRoom(t *testing.T) {
	samples := []SharedSample{
		sample(0, 3, 3, 6, 6),
		sample(1, 3, 13, 6, 10), // 16: at the room, not over
		sample(2, 3, 14, 6, 10), // 17: over
		sample(3, 3, 9, 6, 10),
		{Seconds: 4, Total: 18, Open: map[string]int{SharedSteady: 3}}, // a connection no member owns counts too
	}
	over := OverBudget(samples, 16)
	if len(over) != 2 || over[0].Seconds != 2 || over[1].Seconds != 4 {
		t.Fatalf("OverBudget = %+v, want the samples at 2 s and 4 s", over)
	}
	if got := OverBudget(samples[:2], 16); len(got) != 0 {
		t.Fatalf("OverBudget at the room = %+v, want none", got)
	}
}

func TestStatsSeesBorrowingAndGivingBack(t *testing.T) {
	samples := []SharedSample{
		sample(0, 3, 3, 6, 6),
		sample(5, 3, 6, 6, 9),   // above the fair share of 8: borrowing
		sample(10, 3, 9, 6, 10), // peak
		sample(15, 3, 6, 6, 9),  // still above it
		sample(20, 3, 3, 6, 6),  // given back
		sample(25, 3, 6, 6, 9),  // borrowing again does not move the first times
	}
	st := Stats(samples, 16, SharedMembers)
	if st.FairShare != 8 || st.PeakTotal != 12 || st.Over != 0 || st.Samples != 6 {
		t.Fatalf("Stats = %+v", st)
	}
	if st.BorrowedAt[SharedSpiky] != 5 || st.GaveBackAt[SharedSpiky] != 20 {
		t.Fatalf("spiky borrowed at %v, gave back at %v; want 5 and 20", st.BorrowedAt, st.GaveBackAt)
	}
	if _, ok := st.BorrowedAt[SharedSteady]; ok {
		t.Fatalf("steady never went above its fair share, yet BorrowedAt = %v", st.BorrowedAt)
	}
	if st.PeakAllocated[SharedSpiky] != 10 || st.LastAllocated[SharedSpiky] != 9 || st.PeakOpen[SharedSpiky] != 9 {
		t.Fatalf("spiky: peak allocation %d, last %d, peak open %d; want 10, 9, 9",
			st.PeakAllocated[SharedSpiky], st.LastAllocated[SharedSpiky], st.PeakOpen[SharedSpiky])
	}
	if s := st.String(); !strings.Contains(s, "above its fair share from 5 s, back within it at 20 s") {
		t.Fatalf("String() = %q", s)
	}
}

func TestStatsWithoutGivingBack(t *testing.T) {
	st := Stats([]SharedSample{sample(0, 3, 3, 6, 6), sample(1, 3, 9, 6, 10)}, 16, SharedMembers)
	if _, ok := st.GaveBackAt[SharedSpiky]; ok {
		t.Fatalf("GaveBackAt = %v, want none: the allocation never came back within the fair share", st.GaveBackAt)
	}
}

func TestStackOpenStacksMembersInOrder(t *testing.T) {
	bands := StackOpen([]SharedSample{sample(0, 3, 3, 6, 6), sample(1, 3, 9, 6, 10)}, SharedMembers)
	if len(bands) != 2 || bands[0].Name != SharedSteady || bands[1].Name != SharedSpiky {
		t.Fatalf("bands = %+v", bands)
	}
	// The spiky band sits on the steady one; its top is the total.
	if got := bands[1].Low; got[0] != 3 || got[1] != 3 {
		t.Fatalf("spiky's band starts at %v, want on top of steady's 3", got)
	}
	if got := bands[1].High; got[0] != 6 || got[1] != 12 {
		t.Fatalf("the stack's top is %v, want the totals 6 and 12", got)
	}
}

func TestSharedChartDrawsTheStackUnderTheBudget(t *testing.T) {
	samples := []SharedSample{sample(0, 3, 3, 6, 6), sample(30, 3, 9, 6, 10), sample(60, 3, 3, 6, 6)}
	svg := SharedChart(samples, SharedMembers, 16, 18, SpikeSpans(SharedLoad(1000, 60*time.Second)[SharedSpiky]), "a note")
	if err := xml.Unmarshal([]byte(svg), new(struct{})); err != nil {
		t.Fatalf("not well-formed SVG: %v", err)
	}
	if n := strings.Count(svg, "<polygon"); n != 2 {
		t.Fatalf("%d stacked areas, want one per member", n)
	}
	if n := strings.Count(svg, "<polyline"); n != 2 {
		t.Fatalf("%d allocation lines, want one per member", n)
	}
	for _, want := range []string{"budget room 16", "maxConnections 18", "fair share 8", SharedSteady, SharedSpiky, "a note", "spiky&#39;s spike"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the chart does not say %q", want)
		}
	}
	// The stack stays under the budget line (12 < 16): no point of an
	// area is drawn above it (SVG's y grows downwards).
	m := regexp.MustCompile(`y1="([0-9.]+)"[^>]*/><text[^>]*>budget room 16`).FindStringSubmatch(svg)
	if m == nil {
		t.Fatal("no budget line")
	}
	budgetY, _ := strconv.ParseFloat(m[1], 64)
	for _, poly := range regexp.MustCompile(`<polygon[^>]*points="([^"]*)"`).FindAllStringSubmatch(svg, -1) {
		for _, pt := range strings.Fields(poly[1]) {
			_, y, _ := strings.Cut(pt, ",")
			if v, _ := strconv.ParseFloat(y, 64); v < budgetY {
				t.Fatalf("a stacked point at y=%v is above the budget line at y=%v", v, budgetY)
			}
		}
	}
}

func TestSpikeSpansFollowThePhases(t *testing.T) {
	spans := SpikeSpans(SharedLoad(1000, 100*time.Second)[SharedSpiky])
	if len(spans) != 1 || spans[0].From != 10 || spans[0].To != 55 {
		t.Fatalf("SpikeSpans = %+v, want the spike from 10 s to 55 s", spans)
	}
}

func TestSharedLoadIsSizedByCapacity(t *testing.T) {
	d := 100 * time.Second
	for _, capacity := range []float64{400, 3000} {
		load := SharedLoad(capacity, d)
		for _, m := range SharedMembers {
			if got := TotalDuration(load[m]); got != d {
				t.Errorf("%s's load lasts %s, want %s", m, got, d)
			}
		}
		if got := load[SharedSteady][0].RPS; got > capacity*0.7 {
			t.Errorf("steady load %.0f above the 70%% target of one pod's %.0f", got, capacity)
		}
		spike := load[SharedSpiky][1]
		if spike.Name != "spike" || spike.RPS < 2*capacity {
			t.Errorf("spike %+v does not need more than two pods of %.0f", spike, capacity)
		}
	}
}

func TestSharedRowMarksOverBudget(t *testing.T) {
	s := sample(7, 3, 14, 6, 10)
	if row := SharedRow(s, "spike", 16); !strings.Contains(row, "OVER THE BUDGET") {
		t.Fatalf("row %q does not mark 17 > 16", row)
	}
	if row := SharedRow(sample(7, 3, 9, 6, 10), "spike", 16); strings.Contains(row, "OVER") {
		t.Fatalf("row %q marks 12 ≤ 16", row)
	}
}

func TestWithApplicationName(t *testing.T) {
	got, err := withApplicationName("postgres://u:p@127.0.0.1:5432/db?sslmode=disable", "spiky")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "application_name=spiky") || !strings.Contains(got, "sslmode=disable") || !strings.Contains(got, "/db?") {
		t.Fatalf("withApplicationName = %q", got)
	}
}
