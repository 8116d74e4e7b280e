package scenario

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func f(v float64) *float64 { return &v }

func TestParseShape(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []Phase
	}{
		{"constant, default mix", "phase a 30s 100", []Phase{{Name: "a", Duration: 30 * time.Second, RPS: 100, WriteShare: f(0.1)}}},
		{"ramp, comments, blank lines", "# c\n\ncreates 25%  # file-wide\nphase up 1m 100..400 # ramp\n",
			[]Phase{{Name: "up", Duration: time.Minute, RPS: 100, ToRPS: f(400), WriteShare: f(0.25)}}},
		{"ramp down to zero, own mix", "phase down 10s 50..0 creates=0%",
			[]Phase{{Name: "down", Duration: 10 * time.Second, RPS: 50, ToRPS: f(0), WriteShare: f(0)}}},
		{"multiples of capacity", "phase a 10s 1.5x\nphase b 10s 0.2x..2x",
			[]Phase{
				{Name: "a", Duration: 10 * time.Second, RPS: 1.5, WriteShare: f(0.1), PerCapacity: true},
				{Name: "b", Duration: 10 * time.Second, RPS: 0.2, ToRPS: f(2), WriteShare: f(0.1), PerCapacity: true},
			}},
		{"repeat, nested", "phase a 1s 1\nrepeat 2\n phase b 2s 2\n repeat 2\n  phase c 3s 3\n end\nend\nphase d 4s 4",
			[]Phase{
				{Name: "a", Duration: 1 * time.Second, RPS: 1, WriteShare: f(0.1)},
				{Name: "b", Duration: 2 * time.Second, RPS: 2, WriteShare: f(0.1)},
				{Name: "c", Duration: 3 * time.Second, RPS: 3, WriteShare: f(0.1)},
				{Name: "c", Duration: 3 * time.Second, RPS: 3, WriteShare: f(0.1)},
				{Name: "b", Duration: 2 * time.Second, RPS: 2, WriteShare: f(0.1)},
				{Name: "c", Duration: 3 * time.Second, RPS: 3, WriteShare: f(0.1)},
				{Name: "c", Duration: 3 * time.Second, RPS: 3, WriteShare: f(0.1)},
				{Name: "d", Duration: 4 * time.Second, RPS: 4, WriteShare: f(0.1)},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseShape(tc.text)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %v\nwant %v", got, tc.want)
			}
		})
	}
}

func TestParseShapeErrors(t *testing.T) {
	for _, tc := range []struct {
		text string
		line int
		msg  string
	}{
		{"", 0, "no phase"},
		{"# only a comment\n", 0, "no phase"},
		{"phase a 30s 100\nramp b 1s 1", 2, `unknown statement "ramp"`},
		{"phase a 30s", 1, "want NAME DURATION RATE"},
		{"phase a 30s 1 creates=5% extra", 1, "got 5 fields"},
		{"phase 9a 30s 100", 1, `name "9a"`},
		{"\nphase a 30x 100", 2, `a: duration "30x"`},
		{"phase a 0s 100", 1, `duration "0s"`},
		{"phase a 2h 100", 1, `duration "2h"`},
		{"phase a 30s fast", 1, `a: rate "fast"`},
		{"phase a 30s -5", 1, `rate "-5"`},
		{"phase a 30s 100..", 1, `rate "100.."`},
		{"phase a 30s 100..99999", 1, `rate "100..99999"`},
		{"phase a 30s 0.5x..400", 1, "both ends in req/s or both in multiples"},
		{"phase a 30s 100..2x", 1, "both ends in req/s or both in multiples"},
		{"phase a 30s 21x", 1, "from 0x to 20x"},
		{"phase a 30s x", 1, "from 0x to 20x"},
		{"phase a 30s 100 writes=5%", 1, `"writes=5%": want creates=P%`},
		{"phase a 30s 100 creates=150%", 1, `creates: "150%"`},
		{"creates 10", 1, `creates: "10": want a percentage`},
		{"creates", 1, "creates: want one percentage"},
		{"repeat\nphase a 1s 1\nend", 1, "repeat: want a count"},
		{"repeat 0\nphase a 1s 1\nend", 1, `repeat: count "0"`},
		{"repeat x\nphase a 1s 1\nend", 1, `repeat: count "x"`},
		{"phase a 1s 1\nrepeat 2\nphase b 1s 1", 2, "repeat without an end"},
		{"phase a 1s 1\nend", 2, "end without a repeat"},
		{"phase a 1s 1\nrepeat 2\nend", 2, "repeat with no phase before its end (line 3)"},
		{"repeat 1000\nrepeat 1000\nphase a 1s 1\nend\nend", 1, "more than 10000 phases"},
		{"repeat 5\nphase a 1h 1\nend", 0, "at most 2h0m0s"},
	} {
		t.Run(strings.ReplaceAll(tc.text, "\n", `\n`), func(t *testing.T) {
			phases, err := ParseShape(tc.text)
			var se *ShapeError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, %v; want a ShapeError", phases, err)
			}
			if se.Line != tc.line || !strings.Contains(se.Msg, tc.msg) {
				t.Errorf("error %q at line %d; want line %d containing %q", se.Msg, se.Line, tc.line, tc.msg)
			}
		})
	}
}

// The default phases are expressible as a shape, and the shipped shapes parse.
func TestShapeFiles(t *testing.T) {
	def, err := LoadShape("../shapes/default.shape")
	if err != nil {
		t.Fatal(err)
	}
	want := Phases(3*time.Minute, 0)
	for i := range want {
		want[i].WriteShare = f(0.1)
	}
	if !reflect.DeepEqual(def, want) {
		t.Errorf("default.shape = %v\nwant Phases(3m, 0) = %v", def, want)
	}
	bursts, err := LoadShape("../shapes/bursts.shape")
	if err != nil {
		t.Fatal(err)
	}
	if len(bursts) != 9 || TotalDuration(bursts) != 3*time.Minute+30*time.Second {
		t.Errorf("bursts.shape: %d phases, %s; want 9 phases, 3m30s", len(bursts), TotalDuration(bursts))
	}
	if _, err := LoadShape("../shapes/missing.shape"); err == nil {
		t.Error("a missing file loads")
	}
}

// Sized turns multiples of capacity into rates and leaves rates alone;
// Drive refuses phases that were not sized.
func TestSized(t *testing.T) {
	phases, err := ParseShape("phase a 10s 100\nphase b 10s 1.5x\nphase c 10s 0.5x..2x")
	if err != nil {
		t.Fatal(err)
	}
	if !PerCapacity(phases) {
		t.Fatal("PerCapacity = false for a shape in multiples of capacity")
	}
	got := Sized(phases, 333)
	want := []Phase{
		{Name: "a", Duration: 10 * time.Second, RPS: 100, WriteShare: f(0.1)},
		{Name: "b", Duration: 10 * time.Second, RPS: 500, WriteShare: f(0.1)},
		{Name: "c", Duration: 10 * time.Second, RPS: 167, ToRPS: f(666), WriteShare: f(0.1)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sized = %v\nwant %v", got, want)
	}
	if PerCapacity(got) {
		t.Error("PerCapacity = true after Sized")
	}
	if phases[1].RPS != 1.5 || *phases[2].ToRPS != 2 {
		t.Error("Sized changed its input")
	}
	if _, err := Drive(context.Background(), nil, DriveOptions{Phases: phases}); err == nil {
		t.Error("Drive ran phases in multiples of capacity")
	}
}

func TestPhaseDue(t *testing.T) {
	constant := Phase{Duration: 10 * time.Second, RPS: 100}
	ramp := Phase{Duration: 10 * time.Second, RPS: 100, ToRPS: f(300)}
	down := Phase{Duration: 10 * time.Second, RPS: 100, ToRPS: f(0)}
	for _, tc := range []struct {
		p    Phase
		at   time.Duration
		want int
	}{
		{constant, 0, 0},
		{constant, 5 * time.Second, 500},
		{constant, 20 * time.Second, 1000}, // capped at the phase's end
		{ramp, 5 * time.Second, 750},       // 100·5 + 200·5²/(2·10)
		{ramp, 10 * time.Second, 2000},     // the mean rate 200 × 10s
		{down, 10 * time.Second, 500},
	} {
		if got := tc.p.Due(tc.at); got != tc.want {
			t.Errorf("%v.Due(%s) = %d, want %d", tc.p, tc.at, got, tc.want)
		}
	}
}
