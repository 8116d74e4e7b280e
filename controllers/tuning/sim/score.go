package sim

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Row is one line of the scorecard.
type Row struct {
	Trace                 string  `json:"trace"`
	Policy                string  `json:"policy"`
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
	OutOfBounds           int     `json:"outOfBounds"`
	// Static is the static setting, for static policies.
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
		LoadChanges: len(tr.Changes),
	}
	var good float64
	for _, w := range r.Windows {
		if w.InObjective {
			good += w.Served * (w.End - prevEnd(r.Windows, w))
		} else {
			row.ViolatingWindows++
		}
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
	return row
}

func prevEnd(ws []WindowResult, w WindowResult) float64 {
	i := slices.IndexFunc(ws, func(x WindowResult) bool { return x.End == w.End })
	if i <= 0 {
		return 0
	}
	return ws[i-1].End
}

func round(f float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(f*p) / p
}

// SweepSpace is the grid of static settings the static-best sweep tries.
type SweepSpace struct {
	Workers, Pool, Cache []int32
	MaxReplicas          int32
}

// DefaultSweep is the grid the scorecard uses.
func DefaultSweep() SweepSpace {
	return SweepSpace{
		Workers:     []int32{8, 16, 64},
		Pool:        []int32{4, 8, 16},
		Cache:       []int32{4000, 16000},
		MaxReplicas: 16,
	}
}

// StaticBest finds the best static setting for a trace: the fewest
// violating windows, then the fewest pod-seconds, within the connection
// budget. For each workers/pool/cache combination it tries replicas from
// the fewest that could carry the trace's peak load on CPU alone, up until
// no window violates (more pods would only cost more).
func StaticBest(sc Scenario, tr Trace, space SweepSpace) (Static, Result) {
	tr = tr.withDefaults()
	peak := 0.0
	for t := 0.0; t < tr.Duration.Seconds(); t++ {
		peak = math.Max(peak, tr.Load(t).Rate)
	}
	from := max(int32(math.Ceil(peak*sc.Model.CPUPerRequest/sc.Model.PodCores)), 1)
	var (
		best    Static
		bestRes Result
		bestRow Row
		found   bool
	)
	for _, w := range space.Workers {
		for _, p := range space.Pool {
			for _, c := range space.Cache {
				for r := from; r <= space.MaxReplicas; r++ {
					if sc.Budget > 0 && r*p > sc.Budget {
						break
					}
					s := sc.Start
					s.Replicas, s.MaxInFlight, s.PoolMaxConns, s.CacheMaxEntries = r, w, p, c
					pol := Static{Label: "static-best", Settings: s}
					res := Run(sc, tr, pol)
					row := Score(tr, res)
					if !found || row.ViolatingWindows < bestRow.ViolatingWindows ||
						(row.ViolatingWindows == bestRow.ViolatingWindows && row.PodSeconds < bestRow.PodSeconds) {
						best, bestRes, bestRow, found = pol, res, row, true
					}
					if row.ViolatingWindows == 0 {
						break
					}
				}
			}
		}
	}
	return best, bestRes
}

// Describe formats static settings for the scorecard.
func Describe(s pacerv1.Settings) string {
	return fmt.Sprintf("replicas=%d maxInFlight=%d poolMaxConns=%d cacheMaxEntries=%d", s.Replicas, s.MaxInFlight, s.PoolMaxConns, s.CacheMaxEntries)
}

// Scorecard runs every policy on every trace, the traces in parallel.
func Scorecard(sc Scenario, traces []Trace, space SweepSpace) ([]Row, map[string][]Result) {
	type out struct {
		rows []Row
		runs []Result
	}
	outs := make([]out, len(traces))
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, tr := range traces {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			best, bestRes := StaticBest(sc, tr, space)
			for _, res := range []Result{Run(sc, tr, Pacer{}), bestRes, Run(sc, tr, HPALike{}), Run(sc, tr, PacerNoCPU{})} {
				row := Score(tr, res)
				if res.Policy == "static-best" {
					row.Static = Describe(best.Settings)
				}
				outs[i].rows = append(outs[i].rows, row)
				outs[i].runs = append(outs[i].runs, res)
			}
		})
	}
	wg.Wait()
	var rows []Row
	runs := map[string][]Result{}
	for i, tr := range traces {
		rows = append(rows, outs[i].rows...)
		runs[tr.Name] = outs[i].runs
	}
	return rows, runs
}

// Table formats rows as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| trace | policy | windows in objective | violating windows | recovery (s) | changes | to recover | reversals | throughput at objective (req/s) | pod-seconds | peak connections | budget |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %.2f%% | %d | %.0f | %d | %d | %d | %.1f | %.0f | %d | %d |\n",
			r.Trace, r.Policy, r.WindowsInObjectivePct, r.ViolatingWindows, r.RecoverySeconds, r.Changes,
			r.ChangesToRecover, r.Reversals, r.ThroughputAtObjective, r.PodSeconds, r.PeakConnections, r.ConnectionBudget)
	}
	return b.String()
}
