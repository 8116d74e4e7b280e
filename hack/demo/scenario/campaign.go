package scenario

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Campaign is campaign.json: several comparisons (repetitions of some
// shapes) on one dev cluster, summed up per shape and run kind, with the
// targets of docs/demo.md checked.
type Campaign struct {
	CapacityRPS float64 `json:"capacityRps,omitempty"`
	// Shapes, in the order first run, each with its repetitions' figures
	// per run kind.
	Shapes []CampaignShape `json:"shapes"`
	// Targets are the checks, each met or not, with its figures.
	Targets []Target `json:"targets"`
	// Comparisons are the repetitions, in order.
	Comparisons []Comparison `json:"comparisons"`
}

// CampaignShape is one shape's repetitions.
type CampaignShape struct {
	Shape       string `json:"shape"`
	Repetitions int    `json:"repetitions"`
	// Runs: per run kind, the median and range of each figure.
	Runs map[string]RunSpread `json:"runs"`
}

// RunSpread is one run kind's figures over a shape's repetitions.
type RunSpread struct {
	WindowsInObjectivePct Spread `json:"windowsInObjectivePct"`
	ViolatingWindows      Spread `json:"violatingWindows"`
	Errors                Spread `json:"errors"`
	PodSeconds            Spread `json:"podSeconds"`
	PeakReplicas          Spread `json:"peakReplicas"`
	Changes               Spread `json:"changes"`
}

// Spread is the median, least and most of some values.
type Spread struct {
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Values []float64 `json:"values"`
}

// SpreadOf the values (the median of an even count is the mean of the
// middle two).
func SpreadOf(values []float64) Spread {
	if len(values) == 0 {
		return Spread{}
	}
	s := slices.Sorted(slices.Values(values))
	mid := len(s) / 2
	median := s[mid]
	if len(s)%2 == 0 {
		median = (s[mid-1] + s[mid]) / 2
	}
	return Spread{Median: median, Min: s[0], Max: s[len(s)-1], Values: values}
}

func (s Spread) String() string {
	if s.Min == s.Max {
		return fmt.Sprintf("%g", s.Median)
	}
	return fmt.Sprintf("%g (%g–%g)", s.Median, s.Min, s.Max)
}

// Target is one check of the campaign.
type Target struct {
	Name string `json:"name"`
	Met  bool   `json:"met"`
	// Detail gives the figures the check compared.
	Detail string `json:"detail"`
}

// The targets: in every repetition Pacer's windows in objective are at
// least each HPA run's, and per shape the median of Pacer's pod-seconds
// is at most this multiple of the hand-sized HPA's median.
const maxPodSecondsOverHPA = 1.15

// CampaignOf sums the comparisons up per shape and checks the targets.
func CampaignOf(cmps []Comparison) Campaign {
	c := Campaign{Comparisons: cmps}
	byShape := map[string][]Comparison{}
	var order []string
	for _, cmp := range cmps {
		c.CapacityRPS = max(c.CapacityRPS, cmp.CapacityRPS)
		if _, ok := byShape[cmp.Shape]; !ok {
			order = append(order, cmp.Shape)
		}
		byShape[cmp.Shape] = append(byShape[cmp.Shape], cmp)
	}
	for _, name := range order {
		reps := byShape[name]
		cs := CampaignShape{Shape: name, Repetitions: len(reps), Runs: map[string]RunSpread{}}
		for _, run := range CompareRuns {
			var pct, viol, errs, pods, peak, changes []float64
			for _, cmp := range reps {
				r, ok := cmp.Runs[run]
				if !ok {
					continue
				}
				pct = append(pct, r.WindowsInObjectivePct)
				viol = append(viol, float64(r.ViolatingWindows))
				errs = append(errs, float64(r.Errors.Total))
				pods = append(pods, r.PodSeconds)
				peak = append(peak, float64(r.PeakReplicas))
				changes = append(changes, float64(r.Changes))
			}
			if len(pct) == 0 {
				continue
			}
			cs.Runs[run] = RunSpread{
				WindowsInObjectivePct: SpreadOf(pct), ViolatingWindows: SpreadOf(viol), Errors: SpreadOf(errs),
				PodSeconds: SpreadOf(pods), PeakReplicas: SpreadOf(peak), Changes: SpreadOf(changes),
			}
		}
		c.Shapes = append(c.Shapes, cs)
		c.Targets = append(c.Targets, podSecondsTarget(cs))
	}
	for i, cmp := range cmps {
		for _, hpa := range []string{RunHPAStart, RunHPA} {
			c.Targets = append(c.Targets, objectiveTarget(i+1, cmp, hpa))
		}
	}
	return c
}

// objectiveTarget: Pacer's windows in objective ≥ the HPA run's, in one
// repetition.
func objectiveTarget(n int, cmp Comparison, hpa string) Target {
	t := Target{Name: fmt.Sprintf("repetition %d (%s): pacer's windows in objective ≥ %s's", n, cmp.Shape, hpa)}
	p, okP := cmp.Runs[RunPacer]
	h, okH := cmp.Runs[hpa]
	if !okP || !okH {
		t.Detail = "a run is missing"
		return t
	}
	t.Met = p.WindowsInObjectivePct >= h.WindowsInObjectivePct
	t.Detail = fmt.Sprintf("%.1f%% vs %.1f%%", p.WindowsInObjectivePct, h.WindowsInObjectivePct)
	return t
}

// podSecondsTarget: the median of Pacer's pod-seconds ≤ 1.15 × the
// hand-sized HPA's median, on one shape.
func podSecondsTarget(cs CampaignShape) Target {
	t := Target{Name: fmt.Sprintf("%s: pacer's median pod-seconds ≤ %g × hpa's", cs.Shape, maxPodSecondsOverHPA)}
	p, okP := cs.Runs[RunPacer]
	h, okH := cs.Runs[RunHPA]
	if !okP || !okH || h.PodSeconds.Median == 0 {
		t.Detail = "a run is missing"
		return t
	}
	ratio := p.PodSeconds.Median / h.PodSeconds.Median
	t.Met = ratio <= maxPodSecondsOverHPA
	t.Detail = fmt.Sprintf("%g vs %g (%.2f×)", p.PodSeconds.Median, h.PodSeconds.Median, ratio)
	return t
}

// CampaignMarkdown is campaign.md: a table per shape (median and range
// per run kind), then the targets.
func CampaignMarkdown(c Campaign) string {
	var b strings.Builder
	b.WriteString("# demo-compare campaign\n\n")
	if c.CapacityRPS > 0 {
		fmt.Fprintf(&b, "Capacity of one pod at the starting settings (closed-loop probe): %.0f req/s.\n\n", c.CapacityRPS)
	}
	for _, cs := range c.Shapes {
		fmt.Fprintf(&b, "## %s (%d repetition(s); median (least–most))\n\n", cs.Shape, cs.Repetitions)
		b.WriteString("| | " + strings.Join(CompareRuns, " | ") + " |\n|---|" + strings.Repeat("---|", len(CompareRuns)) + "\n")
		row := func(name string, f func(RunSpread) Spread) {
			b.WriteString("| " + name)
			for _, run := range CompareRuns {
				v := "-"
				if r, ok := cs.Runs[run]; ok {
					v = f(r).String()
				}
				b.WriteString(" | " + v)
			}
			b.WriteString(" |\n")
		}
		row("windows in objective (%)", func(r RunSpread) Spread { return r.WindowsInObjectivePct })
		row("violating windows", func(r RunSpread) Spread { return r.ViolatingWindows })
		row("errors", func(r RunSpread) Spread { return r.Errors })
		row("pod-seconds", func(r RunSpread) Spread { return r.PodSeconds })
		row("peak pods", func(r RunSpread) Spread { return r.PeakReplicas })
		row("changes", func(r RunSpread) Spread { return r.Changes })
		b.WriteString("\n")
	}
	b.WriteString("## Targets\n\n")
	for _, t := range c.Targets {
		mark := "missed"
		if t.Met {
			mark = "met"
		}
		fmt.Fprintf(&b, "- %s: **%s** (%s)\n", t.Name, mark, t.Detail)
	}
	return b.String()
}

// writeCampaign writes campaign.json and campaign.md.
func writeCampaign(dir string, c Campaign) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "campaign.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "campaign.md"), []byte(CampaignMarkdown(c)), 0o644)
}
