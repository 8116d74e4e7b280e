package scenario

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// A load shape file (DEMO_SHAPE) lists the phases of load, one statement
// per line; '#' starts a comment. See docs/demo.md.
//
//	creates 10%                       # share of requests that create a user, the rest read (default 10%)
//	phase warm   30s 100              # NAME DURATION RATE: a constant rate, in requests per second
//	phase climb  60s 100..400         # a linear ramp from 100 to 400 req/s
//	phase step   60s 1.5x             # 1.5 times the measured capacity of a starting pod
//	phase rise   30s 0.5x..2x         # a ramp in multiples of that capacity
//	repeat 3                          # the phases up to the matching `end` run 3 times
//	  phase burst 10s 600 creates=30% # a phase with its own mix
//	  phase calm  20s 150
//	end
//
// Limits keep a typo from starting an endless or absurd run.
const (
	maxShapeRate   = 20000
	maxShapeTimes  = 20 // of the measured capacity
	maxShapePhase  = time.Hour
	maxShapeTotal  = 2 * time.Hour
	maxShapePhases = 10000
	maxShapeRepeat = 1000
)

var phaseName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,15}$`)

// LoadShape reads and parses a shape file.
func LoadShape(path string) ([]Phase, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	phases, err := ParseShape(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return phases, nil
}

// ShapeError is a mistake in a shape file, at a line.
type ShapeError struct {
	Line int
	Msg  string
}

func (e *ShapeError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
}

// ParseShape parses a shape (the format above) into phases, repeats
// unrolled, each with its rate, ramp and share of creates.
func ParseShape(text string) ([]Phase, error) {
	type block struct {
		line, times int
		phases      []Phase
	}
	stack := []*block{{times: 1}}
	creates := 0.1
	errAt := func(line int, format string, args ...any) error {
		return &ShapeError{Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	for i, raw := range strings.Split(text, "\n") {
		line := i + 1
		if c := strings.Index(raw, "#"); c >= 0 {
			raw = raw[:c]
		}
		f := strings.Fields(raw)
		if len(f) == 0 {
			continue
		}
		top := stack[len(stack)-1]
		switch f[0] {
		case "creates":
			if len(f) != 2 {
				return nil, errAt(line, "creates: want one percentage, e.g. `creates 10%%`")
			}
			v, err := percent(f[1])
			if err != nil {
				return nil, errAt(line, "creates: %v", err)
			}
			creates = v
		case "phase":
			ph, err := parsePhase(f[1:], creates)
			if err != nil {
				return nil, errAt(line, "phase: %v", err)
			}
			top.phases = append(top.phases, ph)
		case "repeat":
			if len(f) != 2 {
				return nil, errAt(line, "repeat: want a count, e.g. `repeat 3`")
			}
			n, err := strconv.Atoi(f[1])
			if err != nil || n < 1 || n > maxShapeRepeat {
				return nil, errAt(line, "repeat: count %q: want a whole number from 1 to %d", f[1], maxShapeRepeat)
			}
			stack = append(stack, &block{line: line, times: n})
		case "end":
			if len(f) != 1 {
				return nil, errAt(line, "end: takes nothing")
			}
			if len(stack) == 1 {
				return nil, errAt(line, "end without a repeat")
			}
			if len(top.phases) == 0 {
				return nil, errAt(top.line, "repeat with no phase before its end (line %d)", line)
			}
			stack = stack[:len(stack)-1]
			parent := stack[len(stack)-1]
			for range top.times {
				parent.phases = append(parent.phases, top.phases...)
				if len(parent.phases) > maxShapePhases {
					return nil, errAt(top.line, "repeat: more than %d phases in all", maxShapePhases)
				}
			}
		default:
			return nil, errAt(line, "unknown statement %q (want creates, phase, repeat or end)", f[0])
		}
	}
	if len(stack) > 1 {
		return nil, errAt(stack[len(stack)-1].line, "repeat without an end")
	}
	phases := stack[0].phases
	if len(phases) == 0 {
		return nil, errAt(0, "no phase (want at least one `phase NAME DURATION RATE`)")
	}
	if total := TotalDuration(phases); total > maxShapeTotal {
		return nil, errAt(0, "the phases last %s in all; at most %s", total, maxShapeTotal)
	}
	return phases, nil
}

func parsePhase(f []string, creates float64) (Phase, error) {
	if len(f) < 3 || len(f) > 4 {
		return Phase{}, fmt.Errorf("want NAME DURATION RATE [creates=P%%], got %d fields", len(f))
	}
	name := f[0]
	if !phaseName.MatchString(name) {
		return Phase{}, fmt.Errorf("name %q: want a letter then up to 15 letters, digits, '-' or '_'", name)
	}
	d, err := time.ParseDuration(f[1])
	if err != nil || d < time.Second || d > maxShapePhase {
		return Phase{}, fmt.Errorf("%s: duration %q: want 1s to %s, e.g. 30s or 2m", name, f[1], maxShapePhase)
	}
	ph := Phase{Name: name, Duration: d}
	from, to, ramp := strings.Cut(f[2], "..")
	if ph.RPS, ph.PerCapacity, err = rate(from); err != nil {
		return Phase{}, fmt.Errorf("%s: rate %q: %v", name, f[2], err)
	}
	if ramp {
		end, perCapacity, err := rate(to)
		if err != nil {
			return Phase{}, fmt.Errorf("%s: rate %q: %v", name, f[2], err)
		}
		if perCapacity != ph.PerCapacity {
			return Phase{}, fmt.Errorf("%s: rate %q: both ends in req/s or both in multiples of capacity (x)", name, f[2])
		}
		ph.ToRPS = &end
	}
	share := creates
	if len(f) == 4 {
		v, ok := strings.CutPrefix(f[3], "creates=")
		if !ok {
			return Phase{}, fmt.Errorf("%s: %q: want creates=P%%", name, f[3])
		}
		if share, err = percent(v); err != nil {
			return Phase{}, fmt.Errorf("%s: creates: %v", name, err)
		}
	}
	ph.WriteShare = &share
	return ph, nil
}

// rate reads a rate in requests per second, or, with an x suffix, in
// multiples of the measured capacity (perCapacity).
func rate(s string) (v float64, perCapacity bool, err error) {
	if n, ok := strings.CutSuffix(s, "x"); ok {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil || v < 0 || v > maxShapeTimes {
			return 0, false, fmt.Errorf("want a multiple of the measured capacity from 0x to %dx", maxShapeTimes)
		}
		return v, true, nil
	}
	v, err = strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > maxShapeRate {
		return 0, false, fmt.Errorf("want requests per second from 0 to %d, a multiple of capacity such as 1.5x, or FROM..TO for a ramp", maxShapeRate)
	}
	return v, false, nil
}

// PerCapacity says whether any phase is sized in multiples of capacity
// (the run must measure it first).
func PerCapacity(phases []Phase) bool {
	for _, p := range phases {
		if p.PerCapacity {
			return true
		}
	}
	return false
}

// Sized returns the phases with every multiple of capacity turned into
// requests per second (rounded), given the measured capacity.
func Sized(phases []Phase, capacity float64) []Phase {
	out := make([]Phase, len(phases))
	for i, p := range phases {
		out[i] = p
		if !p.PerCapacity {
			continue
		}
		out[i].PerCapacity = false
		out[i].RPS = math.Round(p.RPS * capacity)
		if p.ToRPS != nil {
			to := math.Round(*p.ToRPS * capacity)
			out[i].ToRPS = &to
		}
	}
	return out
}

func percent(s string) (float64, error) {
	n, ok := strings.CutSuffix(s, "%")
	v, err := strconv.ParseFloat(n, 64)
	if !ok || err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("%q: want a percentage from 0%% to 100%%", s)
	}
	return v / 100, nil
}

// TotalDuration is the length of the phases together.
func TotalDuration(phases []Phase) time.Duration {
	var d time.Duration
	for _, p := range phases {
		d += p.Duration
	}
	return d
}
