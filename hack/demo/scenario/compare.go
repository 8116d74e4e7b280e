package scenario

import (
	"fmt"
	"strings"
	"time"
)

// The runs of `make demo-compare`, in the order they run: static settings;
// the real HPA at the starting settings (what a user gets who has not
// sized pods for an HPA); the real HPA with per-pod settings sized for it
// by hand; Pacer from the starting settings.
const (
	RunStatic   = "static"
	RunHPAStart = "hpa-start"
	RunHPA      = "hpa"
	RunPacer    = "pacer"
)

// CompareRuns are the names of the comparison's runs, in order.
var CompareRuns = []string{RunStatic, RunHPAStart, RunHPA, RunPacer}

// IsHPARun says whether a run's replicas are set by a real HPA.
func IsHPARun(run string) bool { return run == RunHPA || run == RunHPAStart }

// Comparison is compare.json.
type Comparison struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	// PodLimits is the dev cluster's word on pod limits (cgroups), and
	// ResourceMetrics on metrics.k8s.io (metrics-server), which the HPA reads.
	PodLimits            string   `json:"podLimits"`
	ResourceMetrics      string   `json:"resourceMetrics"`
	ObjectiveP99Ms       float64  `json:"objectiveP99Ms"`
	TargetUtilizationPct int32    `json:"targetUtilizationPct"`
	ReplicaBounds        [2]int32 `json:"replicaBounds"`
	// Shape names the load's shape; Load lists its phases as given (in
	// req/s or multiples of capacity), and CapacityRPS is what one pod at
	// the starting settings answered in the probe before the runs, the
	// unit of those multiples.
	Shape       string  `json:"shape"`
	Load        string  `json:"load"`
	CapacityRPS float64 `json:"capacityRps,omitempty"`
	Seed        uint64  `json:"seed"`
	// WarmupSeconds of unmeasured load preceded each run.
	WarmupSeconds float64 `json:"warmupSeconds"`
	// WindowSeconds is the length of a window of the table and of
	// violatingWindows.
	WindowSeconds float64               `json:"windowSeconds"`
	Runs          map[string]CompareRun `json:"runs"`
}

// CompareRun is one run of the comparison.
type CompareRun struct {
	// Setup says what ran: the tuning mode, the HPA, the starting settings.
	Setup                 string  `json:"setup"`
	WindowsInObjectivePct float64 `json:"windowsInObjectivePct"`
	Windows               int     `json:"windows"`
	ViolatingWindows      int     `json:"violatingWindows"`
	Requests              int     `json:"requests"`
	Errors                Errors  `json:"errors"`
	// PodSeconds is the integral of running pods over the load.
	PodSeconds                float64 `json:"podSeconds"`
	PeakReplicas              int32   `json:"peakReplicas"`
	PeakConnections           int     `json:"peakConnections"`
	PeakConfiguredConnections int     `json:"peakConfiguredConnections"`
	ConnectionBudget          int32   `json:"connectionBudget"`
	// Changes counts the settings changes (tuner) or rescales (HPA);
	// ChangeLog lists them.
	Changes   int      `json:"changes"`
	ChangeLog []Change `json:"changeLog"`
	// MetricsAPI (the hpa run) says whether the HPA could read the pods'
	// CPU: "available", or "not available: …" (it then never scaled).
	MetricsAPI string `json:"metricsAPI,omitempty"`
}

// Errors are a run's failed requests, in all and by kind.
type Errors struct {
	Total int `json:"total"`
	ErrorKinds
}

// CompareRunOf assembles a run's entry from its record and its changes.
func CompareRunOf(setup string, rec *RunRecord, changes []Change, objective time.Duration, budget int32) CompareRun {
	sum := Summarize(rec.Rows, rec.Bins, rec.Samples, nil, objective, budget)
	n := 0
	for _, c := range changes {
		n += int(max(c.Count, 1))
	}
	if changes == nil {
		changes = []Change{}
	}
	return CompareRun{
		Setup:                 setup,
		WindowsInObjectivePct: sum.WindowsInObjectivePct, Windows: sum.Windows, ViolatingWindows: sum.ViolatingWindows,
		Requests: sum.Requests, Errors: Errors{Total: sum.Errors, ErrorKinds: sum.ErrorsByKind},
		PodSeconds:      PodSeconds(rec.Samples, rec.Start, rec.Start.Add(TotalDuration(rec.Phases))),
		PeakReplicas:    PeakPods(rec.Samples),
		PeakConnections: sum.PeakConnections, PeakConfiguredConnections: sum.PeakConfiguredConnections,
		ConnectionBudget: budget,
		Changes:          n, ChangeLog: changes,
	}
}

// PodSeconds integrates the running pods over [from, to]: each sample's
// pod count holds until the next sample.
func PodSeconds(samples []Sample, from, to time.Time) float64 {
	var total float64
	for i := 0; i+1 < len(samples); i++ {
		a, b := samples[i].At, samples[i+1].At
		if a.Before(from) {
			a = from
		}
		if b.After(to) {
			b = to
		}
		if b.After(a) {
			total += float64(samples[i].Pods) * b.Sub(a).Seconds()
		}
	}
	return float64(int(total*10+0.5)) / 10
}

// PeakPods is the most pods running at once.
func PeakPods(samples []Sample) int32 {
	var n int32
	for _, s := range samples {
		n = max(n, int32(s.Pods))
	}
	return n
}

// CompareTable is the comparison as a Markdown table, one column per run.
func CompareTable(c Comparison) string {
	var b strings.Builder
	b.WriteString("| | " + strings.Join(CompareRuns, " | ") + " |\n|---|" + strings.Repeat("---|", len(CompareRuns)) + "\n")
	row := func(name string, f func(CompareRun) string) {
		b.WriteString("| " + name)
		for _, n := range CompareRuns {
			v := "-"
			if r, ok := c.Runs[n]; ok {
				v = f(r)
			}
			b.WriteString(" | " + v)
		}
		b.WriteString(" |\n")
	}
	row("setup", func(r CompareRun) string { return r.Setup })
	row(fmt.Sprintf("windows in objective (p99 ≤ %gms, ≤1%% errors)", c.ObjectiveP99Ms), func(r CompareRun) string {
		return fmt.Sprintf("%.1f%% (%d of %d)", r.WindowsInObjectivePct, r.Windows-r.ViolatingWindows, r.Windows)
	})
	row("violating windows", func(r CompareRun) string { return fmt.Sprint(r.ViolatingWindows) })
	row("requests", func(r CompareRun) string { return fmt.Sprint(r.Requests) })
	row("errors (429 / 503 / 5xx / network)", func(r CompareRun) string {
		e := r.Errors
		return fmt.Sprintf("%d (%d / %d / %d / %d)", e.Total, e.R429, e.R503, e.R5xx, e.Net)
	})
	row("pod-seconds", func(r CompareRun) string { return fmt.Sprintf("%.0f", r.PodSeconds) })
	row("peak pods", func(r CompareRun) string { return fmt.Sprint(r.PeakReplicas) })
	row("peak connections (open / Σ pools / budget)", func(r CompareRun) string {
		return fmt.Sprintf("%d / %d / %d", r.PeakConnections, r.PeakConfiguredConnections, r.ConnectionBudget)
	})
	row("changes", func(r CompareRun) string {
		var parts []string
		for _, ch := range r.ChangeLog {
			s := fmt.Sprintf("%s %d→%d @%.0fs", ch.Setting, ch.From, ch.To, ch.Seconds)
			if ch.Count > 1 {
				s += fmt.Sprintf(" (×%d)", ch.Count)
			}
			parts = append(parts, s)
		}
		if len(parts) == 0 {
			return "0"
		}
		return fmt.Sprintf("%d: %s", r.Changes, strings.Join(parts, ", "))
	})
	return b.String()
}
