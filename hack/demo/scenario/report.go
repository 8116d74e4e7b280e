package scenario

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// WindowRow is one row of the live table and of the report: a window of load.
type WindowRow struct {
	Seconds float64 `json:"t"`
	Phase   string  `json:"phase"`
	// Requests were offered in the window, Errors of them failed.
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	OfferedRPS float64 `json:"offeredRPS"`
	ServedRPS  float64 `json:"servedRPS"`
	P99Ms      float64 `json:"p99Ms"`
	R429       int     `json:"r429"`
	R503       int     `json:"r503"`
	R5xx       int     `json:"r5xx"`
	NetErrors  int     `json:"netErrors"`
	Pods       int     `json:"pods"`
	ReadyPods  int     `json:"readyPods"`
	Replicas   int32   `json:"replicas"`
	Workers    int32   `json:"workers"`
	Pool       int32   `json:"pool"`
	PoolTotal  int     `json:"poolTotal"`
	PGConns    int     `json:"pgConns"`
	CacheHit   int32   `json:"cacheHitPct"`
	Decision   string  `json:"lastDecision"`
	Tuned      string  `json:"tuned"`
	// TunedMessage is the condition's message (the tuner's summary of
	// its last step: why it held, or what it changed), or the HPA's.
	TunedMessage string `json:"tunedMessage,omitempty"`
}

// Row builds a table row from the window's bins and the latest sample.
func Row(seconds float64, phase string, w Bin, width time.Duration, s Sample) WindowRow {
	sec := width.Seconds()
	decision, tuned, message := LastDecision(s.History), s.TunedReason, s.TunedMessage
	if s.HPA != nil {
		decision, tuned, message = s.HPA.String(), s.HPA.ActiveReason, s.HPA.ActiveMessage
	}
	return WindowRow{
		Requests: w.Offered, Errors: w.Errors(),
		Seconds: seconds, Phase: phase,
		OfferedRPS: float64(w.Offered) / sec, ServedRPS: float64(w.OK) / sec,
		P99Ms: float64(w.Quantile(0.99).Microseconds()) / 1000,
		R429:  w.R429, R503: w.R503, R5xx: w.R5xx + w.Other, NetErrors: w.Net + w.NoEndpoint + w.Dropped,
		Pods: s.Pods, ReadyPods: s.ReadyPods, Replicas: s.Replicas, Workers: s.Workers, Pool: s.Pool,
		PoolTotal: s.PoolTotal, PGConns: s.PGConns, CacheHit: s.CacheHit,
		Decision: decision, Tuned: tuned, TunedMessage: message,
	}
}

// TableHeader is the live table's header.
func TableHeader(objective time.Duration, budget int32) string {
	return fmt.Sprintf("%5s %-7s %7s %7s %9s %4s %4s %4s %4s %5s %7s %12s %5s %5s  %s\n",
		"t(s)", "phase", "offered", "served", "p99(ms)", "429", "503", "5xx", "net", "pods", "workers",
		fmt.Sprintf("pool×pods/%d", budget), "pg", "cache", fmt.Sprintf("tuner (objective p99 %s)", objective))
}

// Format renders a row for the live table.
func (r WindowRow) Format(objective time.Duration) string {
	mark := " "
	if r.Requests > 0 && !r.MeetsObjective(objective) {
		mark = "!"
	}
	cache := "-"
	if r.CacheHit >= 0 {
		cache = fmt.Sprintf("%d%%", r.CacheHit)
	}
	dec := r.Decision
	if len(dec) > 90 {
		dec = dec[:87] + "..."
	}
	if r.Tuned != "" {
		dec = "[" + r.Tuned + "] " + dec
	}
	return fmt.Sprintf("%5.0f %-7s %7.0f %7.0f %8.1f%s %4d %4d %4d %4d %2d/%-2d %7d %12s %5d %5s  %s\n",
		r.Seconds, r.Phase, r.OfferedRPS, r.ServedRPS, r.P99Ms, mark, r.R429, r.R503, r.R5xx, r.NetErrors,
		r.ReadyPods, r.Pods, r.Workers, fmt.Sprintf("%d×%d=%d", r.Pool, r.Pods, r.PoolTotal), r.PGConns, cache, dec)
}

// MeetsObjective says whether the window met the p99 objective: its
// served requests' p99 was within it and at most 1% of the offered
// requests failed (a fast error is no success; more than 1% of them and
// the p99 of all requests is past any objective). A window with no load
// counts neither way (false, and CountWindows skips it).
func (r WindowRow) MeetsObjective(objective time.Duration) bool {
	if r.Requests == 0 || r.ServedRPS == 0 {
		return false
	}
	return r.P99Ms <= float64(objective.Microseconds())/1000 && r.Errors*100 <= r.Requests
}

// CountWindows counts the windows with offered load, and those of them
// that missed the objective.
func CountWindows(rows []WindowRow, objective time.Duration) (windows, violating int) {
	for _, r := range rows {
		if r.Requests == 0 {
			continue
		}
		windows++
		if !r.MeetsObjective(objective) {
			violating++
		}
	}
	return windows, violating
}

// ErrorKinds count failed requests by kind.
type ErrorKinds struct {
	R429 int `json:"429"`
	R503 int `json:"503"`
	R5xx int `json:"5xx"`
	// Net: network errors, no ready endpoint, or dropped by the client's
	// concurrency cap.
	Net int `json:"network"`
}

// Summary is summary.json.
type Summary struct {
	WindowsInObjectivePct float64 `json:"windowsInObjectivePct"`
	Windows               int     `json:"windows"`
	// ViolatingWindows missed the objective (MeetsObjective).
	ViolatingWindows          int        `json:"violatingWindows"`
	Requests                  int        `json:"requests"`
	Errors                    int        `json:"errors"`
	ErrorsByKind              ErrorKinds `json:"errorsByKind"`
	Changes                   int        `json:"changes"`
	PeakConnections           int        `json:"peakConnections"`
	PeakConfiguredConnections int        `json:"peakConfiguredConnections"`
	ConnectionBudget          int32      `json:"connectionBudget"`
	ObjectiveP99Ms            float64    `json:"objectiveP99Ms"`
	PeakReplicas              int32      `json:"peakReplicas"`
	PeakWorkers               int32      `json:"peakWorkers"`
	DurationSeconds           float64    `json:"durationSeconds"`
	// PodLimits says whether the pods ran under their CPU and memory
	// limits (cgroups), as the dev cluster reported it at start.
	PodLimits string `json:"podLimits"`
	// Load is the shape as given (rates in req/s or multiples of
	// capacity), and CapacityRPS the capacity a starting pod showed in the
	// probe before the run, when the shape needed it.
	Load        string  `json:"load,omitempty"`
	CapacityRPS float64 `json:"capacityRps,omitempty"`
}

// Summarize computes the summary of a run.
func Summarize(rows []WindowRow, bins []Bin, samples []Sample, decisions []pacerv1.Decision, objective time.Duration, budget int32) Summary {
	s := Summary{ConnectionBudget: budget, ObjectiveP99Ms: float64(objective.Microseconds()) / 1000, DurationSeconds: float64(len(bins))}
	s.Windows, s.ViolatingWindows = CountWindows(rows, objective)
	if s.Windows > 0 {
		s.WindowsInObjectivePct = float64(int(1000*float64(s.Windows-s.ViolatingWindows)/float64(s.Windows))) / 10
	}
	all := Window(bins, 0, len(bins))
	s.Requests, s.Errors = all.Offered, all.Errors()
	s.ErrorsByKind.R429, s.ErrorsByKind.R503, s.ErrorsByKind.R5xx = all.R429, all.R503, all.R5xx+all.Other
	s.ErrorsByKind.Net = all.Net + all.NoEndpoint + all.Dropped
	for _, d := range decisions {
		if d.Applied {
			s.Changes += len(d.Changes)
		}
	}
	for _, sm := range samples {
		s.PeakConnections = max(s.PeakConnections, sm.PGConns)
		s.PeakConfiguredConnections = max(s.PeakConfiguredConnections, sm.PoolTotal)
		s.PeakReplicas = max(s.PeakReplicas, sm.Replicas)
		s.PeakWorkers = max(s.PeakWorkers, sm.Workers)
	}
	return s
}

// CollectDecisions merges the history of every sample, oldest first, without repeats.
func CollectDecisions(samples []Sample) []pacerv1.Decision {
	seen := map[string]int{}
	var out []pacerv1.Decision
	for _, s := range samples {
		for i := len(s.History) - 1; i >= 0; i-- {
			d := s.History[i]
			// One decision per time and change set: a status rewrite of
			// the same decision may reword its reasons.
			key := d.Time.UTC().Format(time.RFC3339Nano)
			for _, c := range d.Changes {
				key += fmt.Sprintf(" %s:%d>%d", c.Setting, c.From, c.To)
			}
			if i, ok := seen[key]; ok {
				out[i] = d // the latest wording
				continue
			}
			seen[key] = len(out)
			out = append(out, d)
		}
	}
	return out
}

// WriteReport writes summary.json, windows.json, table.txt, decisions.md,
// chart.svg and dashboard.svg (the Grafana dashboard's panels) into dir.
func WriteReport(dir string, sum Summary, rows []WindowRow, decisions []pacerv1.Decision, start time.Time, objective time.Duration) error {
	var table strings.Builder
	table.WriteString(TableHeader(objective, sum.ConnectionBudget))
	for _, r := range rows {
		table.WriteString(r.Format(objective))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	write := func(name string, v any) error {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o644)
	}
	if err := write("summary.json", sum); err != nil {
		return err
	}
	if err := write("windows.json", rows); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "table.txt"), []byte(table.String()), 0o644); err != nil {
		return err
	}
	var md strings.Builder
	md.WriteString("# Tuner decisions\n\n| t (s) | mode | applied | setting | from | to | reason |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, d := range decisions {
		for _, c := range d.Changes {
			fmt.Fprintf(&md, "| %.0f | %s | %t | %s | %d | %d | %s |\n", d.Time.Sub(start).Seconds(), d.Mode, d.Applied, c.Setting, c.From, c.To, strings.ReplaceAll(c.Reason, "|", "/"))
		}
	}
	if len(decisions) == 0 {
		md.WriteString("\nNo decisions were recorded in status.history during the run.\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "decisions.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "dashboard.svg"), []byte(DashboardChart(rows, decisions, start, objective, sum.ConnectionBudget)), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "chart.svg"), []byte(Chart(rows, decisions, start, objective)), 0o644)
}
