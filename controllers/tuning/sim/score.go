package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// Row is one line of the scorecard: one trace, policy, seed and variant.
type Row struct {
	Trace   string `json:"trace"`
	Policy  string `json:"policy"`
	Seed    uint64 `json:"seed"`
	Variant string `json:"variant"`
	// Interval is spec.tuning.interval in seconds; CPULimit whether the
	// tuner was told the pods' CPU limit.
	Interval              int     `json:"interval"`
	CPULimit              bool    `json:"cpuLimit"`
	WindowsInObjectivePct float64 `json:"windowsInObjectivePct"`
	ViolatingWindows      int     `json:"violatingWindows"`
	// RecoverySeconds is the time from a step in load until the end of the
	// last violating window within the 10 minutes after it; 0 when none.
	RecoverySeconds float64 `json:"recoverySeconds"`
	Changes         int     `json:"changes"`
	// ChangesToRecover counts the changes made between the step and recovery.
	ChangesToRecover int `json:"changesToRecover"`
	Reversals        int `json:"reversals"`
	// LoadChanges is the number of load changes in the trace, the unit of
	// the reversal target.
	LoadChanges int `json:"loadChanges"`
	// ThroughputAtObjective is requests served in windows that met the
	// objective, per second of the trace.
	ThroughputAtObjective float64 `json:"throughputAtObjective"`
	PodSeconds            float64 `json:"podSeconds"`
	PeakConnections       int     `json:"peakConnections"`
	ConnectionBudget      int     `json:"connectionBudget"`
	OverBudgetSeconds     int     `json:"overBudgetSeconds"`
	// RefusedSeconds and RefusedRequests: PostgreSQL refused connections
	// (max_connections), and requests failed for it.
	RefusedSeconds  int     `json:"refusedSeconds"`
	RefusedRequests float64 `json:"refusedRequests"`
	OutOfBounds     int     `json:"outOfBounds"`
	// Static is the static setting, for static policies; for the
	// baselines, the per-pod settings they scale with.
	Static string `json:"static,omitempty"`
}

// recoveryHorizon bounds the search for the last violating window after a step.
const recoveryHorizon = 600.0

// Score reduces a run to a row.
func Score(tr Trace, r Result) Row {
	row := Row{
		Trace: r.Trace, Policy: r.Policy, PodSeconds: r.PodSeconds,
		PeakConnections: r.PeakConnections, ConnectionBudget: r.Budget,
		OverBudgetSeconds: r.OverBudgetSeconds, OutOfBounds: r.OutOfBounds,
		RefusedSeconds: r.RefusedSeconds, RefusedRequests: math.Round(r.RefusedRequests),
		LoadChanges: len(tr.Changes),
	}
	var good, prev float64
	for _, w := range r.Windows {
		if w.InObjective {
			good += w.Served * (w.End - prev)
		} else {
			row.ViolatingWindows++
		}
		prev = w.End
	}
	if n := len(r.Windows); n > 0 {
		row.WindowsInObjectivePct = round(100*float64(n-row.ViolatingWindows)/float64(n), 2)
		row.ThroughputAtObjective = round(good/r.Windows[n-1].End, 1)
	}
	for _, step := range tr.Steps {
		rec := 0.0
		for _, w := range r.Windows {
			if w.End > step && w.End <= step+recoveryHorizon && !w.InObjective {
				rec = w.End - step
			}
		}
		row.RecoverySeconds = math.Max(row.RecoverySeconds, rec)
		if rec > 0 {
			for _, d := range r.Decisions {
				if d.At > step && d.At <= step+rec {
					row.ChangesToRecover += len(d.Changes)
				}
			}
		}
	}
	last := map[string]int{}
	for _, d := range r.Decisions {
		for _, c := range d.Changes {
			row.Changes++
			dir := 1
			if c.To < c.From {
				dir = -1
			}
			if p, ok := last[c.Setting]; ok && p != dir {
				row.Reversals++
			}
			last[c.Setting] = dir
		}
	}
	row.PodSeconds = round(row.PodSeconds, 0)
	row.RecoverySeconds = round(row.RecoverySeconds, 1)
	return row
}

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// SweepSpace is the grid of static settings the static-best sweep tries,
// and of per-pod settings the baselines' search tries.
type SweepSpace struct {
	Workers, Pool, Cache []int32
	MaxReplicas          int32
	// HPA and KPA are the grids of per-pod settings (and, for kpa-like,
	// targets) the baselines' searches try.
	HPA, KPA []Fixed
}

// DefaultSweep is the grid the scorecard uses.
func DefaultSweep() SweepSpace {
	s := SweepSpace{
		Workers:     []int32{8, 16, 64},
		Pool:        []int32{2, 4, 8, 16},
		Cache:       []int32{4000, 16000},
		MaxReplicas: 16,
	}
	for _, w := range []int32{8, 16, 64} {
		for _, p := range []int32{4, 8} {
			s.HPA = append(s.HPA, Fixed{Workers: w, Pool: p, Cache: 4000})
		}
	}
	for _, t := range []float64{2, 3, 4, 6} {
		s.KPA = append(s.KPA, Fixed{Workers: 16, Pool: 4, Cache: 4000, Target: t}, Fixed{Workers: 64, Pool: 8, Cache: 4000, Target: t})
	}
	return s
}

// StaticBest finds the best static setting for a trace: no violating
// window on the fewest pods if any setting of the grid gets there, else
// the fewest violating windows (then the fewest pods), within the
// connection budget. It knows the trace: an oracle.
func StaticBest(sc Scenario, tr Trace, space SweepSpace) Static {
	tr = tr.withDefaults()
	tsc := tr.scenario(sc)
	peak := 0.0
	for t := 0.0; t < tr.Duration.Seconds(); t++ {
		peak = math.Max(peak, tr.Load(t).Rate)
	}
	from := max(int32(math.Ceil(peak*sc.Model.CPUPerRequest/sc.Model.PodCores)), 1)
	// The grid in order of preference: fewest pods first, within the budget.
	var grid []Static
	for r := from; r <= space.MaxReplicas; r++ {
		for _, p := range space.Pool {
			if tsc.Budget > 0 && tuning.WorstCaseConnections(r, p) > int64(tsc.Budget) {
				continue
			}
			for _, w := range space.Workers {
				for _, c := range space.Cache {
					s := tsc.Start
					s.Replicas, s.MaxInFlight, s.PoolMaxConns, s.CacheMaxEntries = r, w, p, c
					grid = append(grid, Static{Label: "static-best", Settings: s})
				}
			}
		}
	}
	// The first setting with no violating window wins.
	for _, pol := range grid {
		if res := run(sc, tr, pol, 0); !res.Stopped {
			return pol
		}
	}
	// None: the fewest violating windows, then the fewest pods.
	var best Static
	bestV := math.MaxInt
	for _, pol := range grid {
		res := run(sc, tr, pol, bestV-1)
		if v := res.Violations(); !res.Stopped && v < bestV {
			best, bestV = pol, v
		}
	}
	return best
}

// fixedScore is how a baseline did with one grid point over all traces.
type fixedScore struct {
	violations int
	podSeconds float64
}

// pickFixed is a baseline's best grid point: the fewest violating windows
// summed over the traces, then the fewest pod-seconds. One setting for
// all traces, as one would deploy it.
func pickFixed(grid []Fixed, scores []fixedScore) Fixed {
	best := 0
	for i, s := range scores {
		b := scores[best]
		if s.violations < b.violations || (s.violations == b.violations && s.podSeconds < b.podSeconds) {
			best = i
		}
	}
	return grid[best]
}

// Describe formats static settings for the scorecard.
func Describe(s pacerv1.Settings) string {
	return fmt.Sprintf("replicas=%d maxInFlight=%d poolMaxConns=%d cacheMaxEntries=%d", s.Replicas, s.MaxInFlight, s.PoolMaxConns, s.CacheMaxEntries)
}

// RowsJSON is the rows as a JSON array with one row per line: a tenth of
// the indented size, and a diff between two runs shows the rows that moved.
func RowsJSON(rows []Row) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("[\n")
	for i, r := range rows {
		js, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		b.Write(js)
		if i < len(rows)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("]\n")
	return b.Bytes(), nil
}
