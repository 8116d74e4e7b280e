package scenario

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSpreadOf(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want Spread
	}{
		{nil, Spread{}},
		{[]float64{3}, Spread{Median: 3, Min: 3, Max: 3, Values: []float64{3}}},
		{[]float64{9, 1, 5}, Spread{Median: 5, Min: 1, Max: 9, Values: []float64{9, 1, 5}}},
		{[]float64{4, 1, 2, 10}, Spread{Median: 3, Min: 1, Max: 10, Values: []float64{4, 1, 2, 10}}},
	} {
		if d := cmp.Diff(tc.want, SpreadOf(tc.in)); d != "" {
			t.Errorf("SpreadOf(%v) (-want +got):\n%s", tc.in, d)
		}
	}
}

// A campaign sums up repetitions per shape and run kind, and checks each
// repetition's objective against both HPA runs and each shape's median
// pod-seconds against the hand-sized HPA's.
func TestCampaignOf(t *testing.T) {
	rep := func(shape string, pacerPct, hpaStartPct, hpaPct, pacerPods, hpaPods float64) Comparison {
		return Comparison{Shape: shape, CapacityRPS: 400, Runs: map[string]CompareRun{
			RunStatic:   {WindowsInObjectivePct: 50, PodSeconds: 100},
			RunHPAStart: {WindowsInObjectivePct: hpaStartPct, PodSeconds: 100},
			RunHPA:      {WindowsInObjectivePct: hpaPct, PodSeconds: hpaPods},
			RunPacer:    {WindowsInObjectivePct: pacerPct, PodSeconds: pacerPods, Changes: 2},
		}}
	}
	c := CampaignOf([]Comparison{
		rep("default", 100, 80, 95, 220, 200),
		rep("default", 90, 80, 95, 230, 210), // pacer below hpa here
		rep("default", 100, 100, 100, 300, 190),
		rep("bursts", 100, 70, 90, 300, 200), // pacer 1.5× hpa's pod-seconds
	})
	if c.CapacityRPS != 400 || len(c.Shapes) != 2 || c.Shapes[0].Shape != "default" || c.Shapes[0].Repetitions != 3 || c.Shapes[1].Repetitions != 1 {
		t.Fatalf("campaign shapes: %+v", c.Shapes)
	}
	pacer := c.Shapes[0].Runs[RunPacer]
	if pacer.PodSeconds.Median != 230 || pacer.PodSeconds.Min != 220 || pacer.PodSeconds.Max != 300 || pacer.WindowsInObjectivePct.Median != 100 {
		t.Errorf("default, pacer: %+v", pacer)
	}
	got := map[string]bool{}
	for _, tg := range c.Targets {
		got[tg.Name] = tg.Met
	}
	want := map[string]bool{
		"default: pacer's median pod-seconds ≤ 1.15 × hpa's":                 true, // 230 vs 200
		"bursts: pacer's median pod-seconds ≤ 1.15 × hpa's":                  false,
		"repetition 1 (default): pacer's windows in objective ≥ hpa-start's": true,
		"repetition 1 (default): pacer's windows in objective ≥ hpa's":       true,
		"repetition 2 (default): pacer's windows in objective ≥ hpa-start's": true,
		"repetition 2 (default): pacer's windows in objective ≥ hpa's":       false,
		"repetition 3 (default): pacer's windows in objective ≥ hpa-start's": true, // equal counts
		"repetition 3 (default): pacer's windows in objective ≥ hpa's":       true,
		"repetition 4 (bursts): pacer's windows in objective ≥ hpa-start's":  true,
		"repetition 4 (bursts): pacer's windows in objective ≥ hpa's":        true,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("targets (-want +got):\n%s", d)
	}
	md := CampaignMarkdown(c)
	for _, s := range []string{"400 req/s", "## default (3 repetition(s)", "| pod-seconds | 100 | 100 | 200 (190–210) | 230 (220–300) |", "**missed** (90.0% vs 95.0%)"} {
		if !strings.Contains(md, s) {
			t.Errorf("campaign.md lacks %q:\n%s", s, md)
		}
	}
}
