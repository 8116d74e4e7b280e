package sim

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Target is one of the targets, checked in one variant against
// every seed; Got describes the worst seed.
type Target struct {
	Name    string `json:"name"`
	Want    string `json:"want"`
	Variant string `json:"variant"`
	Got     string `json:"got"`
	Met     bool   `json:"met"`
}

// TargetNames are the targets, in the order Targets lists them per variant.
var TargetNames = []string{
	"connection budget",
	"violating windows vs the better baseline",
	"pod-seconds vs static-best",
	"recovery after a 2× step",
	"reversals per load change",
}

// index groups rows by variant, seed, trace and policy.
type index map[[4]string]Row

func indexRows(rows []Row) index {
	ix := index{}
	for _, r := range rows {
		ix[[4]string{r.Variant, fmt.Sprint(r.Seed), r.Trace, r.Policy}] = r
	}
	return ix
}

func (ix index) get(v string, seed uint64, trace, policy string) (Row, bool) {
	r, ok := ix[[4]string{v, fmt.Sprint(seed), trace, policy}]
	return r, ok
}

// Targets checks the targets for every variant, on every seed.
func Targets(c Card) []Target {
	ix := indexRows(c.Rows)
	var out []Target
	for _, v := range c.Options.Variants {
		vn := v.Name
		// Connection budget.
		var over []string
		for _, s := range c.Options.Seeds {
			for _, tr := range c.Options.Traces {
				r, _ := ix.get(vn, s, tr.Name, "pacer")
				if r.OverBudgetSeconds > 0 || r.RefusedSeconds > 0 || r.PeakConnections > r.ConnectionBudget {
					over = append(over, fmt.Sprintf("%s seed %d (peak %d of %d, %d s refused)", tr.Name, s, r.PeakConnections, r.ConnectionBudget, r.RefusedSeconds))
				}
			}
		}
		got := "never exceeded"
		if len(over) > 0 {
			got = fmt.Sprintf("exceeded in %d runs: %s", len(over), strings.Join(firstN(over, 3), "; "))
		}
		out = append(out, Target{Name: TargetNames[0], Want: "never exceeded, no connection refused", Variant: vn, Got: got, Met: len(over) == 0})

		// Violating windows, summed over the traces, worst seed.
		worst, met := "", true
		worstRatio := -1.0
		for _, s := range c.Options.Seeds {
			var p, h, k int
			for _, tr := range c.Options.Traces {
				a, _ := ix.get(vn, s, tr.Name, "pacer")
				b, _ := ix.get(vn, s, tr.Name, "hpa-like")
				d, _ := ix.get(vn, s, tr.Name, "kpa-like")
				p, h, k = p+a.ViolatingWindows, h+b.ViolatingWindows, k+d.ViolatingWindows
			}
			better := min(h, k)
			ratio := float64(p) / math.Max(float64(better), 0.5)
			if 2*p > better {
				met = false
			}
			if ratio > worstRatio {
				worstRatio = ratio
				worst = fmt.Sprintf("seed %d: pacer %d, hpa-like %d, kpa-like %d", s, p, h, k)
			}
		}
		out = append(out, Target{Name: TargetNames[1], Want: "≤ ½ of min(hpa-like, kpa-like), all traces", Variant: vn, Got: worst, Met: met})

		// Pod-seconds where static-best meets the objective.
		var fails []string
		worstR, worstAt := 0.0, ""
		for _, s := range c.Options.Seeds {
			for _, tr := range c.Options.Traces {
				best, _ := ix.get(vn, s, tr.Name, "static-best")
				if best.ViolatingWindows > 0 || best.PodSeconds == 0 {
					continue
				}
				r, _ := ix.get(vn, s, tr.Name, "pacer")
				ratio := r.PodSeconds / best.PodSeconds
				if ratio > worstR {
					worstR, worstAt = ratio, fmt.Sprintf("%s seed %d", tr.Name, s)
				}
				if ratio > 1.15 && !slices.Contains(fails, tr.Name) {
					fails = append(fails, tr.Name)
				}
			}
		}
		got = fmt.Sprintf("worst %.2f× (%s)", worstR, worstAt)
		if len(fails) > 0 {
			got += "; over on " + strings.Join(fails, ", ")
		}
		out = append(out, Target{Name: TargetNames[2], Want: "≤ 1.15× where static-best meets the objective", Variant: vn, Got: got, Met: len(fails) == 0})

		// Recovery after a 2× step.
		worstRec, worstCh := 0.0, 0
		fails = fails[:0]
		for _, tr := range c.Options.Traces {
			if !tr.Step2x {
				continue
			}
			rec, ch := worstRecovery(ix, c.Options.Seeds, vn, tr.Name, "pacer")
			worstRec, worstCh = math.Max(worstRec, rec), max(worstCh, ch)
			if rec > 60 || ch > 3 {
				fails = append(fails, fmt.Sprintf("%s (%.0f s, %d changes; %s)", tr.Name, rec, ch, bestRecovery(ix, c.Options.Seeds, vn, tr.Name)))
			}
		}
		got = fmt.Sprintf("worst %.0f s, %d changes", worstRec, worstCh)
		if len(fails) > 0 {
			got += "; over on " + strings.Join(fails, ", ")
		}
		out = append(out, Target{Name: TargetNames[3], Want: "p99 in objective ≤ 60 s, ≤ 3 changes", Variant: vn, Got: got, Met: len(fails) == 0})

		// Reversals: the worst seed of each trace over its budget.
		fails = fails[:0]
		for _, tr := range c.Options.Traces {
			worst := -1
			for _, s := range c.Options.Seeds {
				r, _ := ix.get(vn, s, tr.Name, "pacer")
				if r.Reversals > r.LoadChanges {
					worst = max(worst, r.Reversals)
				}
			}
			if worst >= 0 {
				fails = append(fails, fmt.Sprintf("%s (%d for %d load changes)", tr.Name, worst, len(tr.Changes)))
			}
		}
		got = "within on every trace"
		if len(fails) > 0 {
			got = "over on " + strings.Join(fails, ", ")
		}
		out = append(out, Target{Name: TargetNames[4], Want: "≤ 1 per load change, every trace", Variant: vn, Got: got, Met: len(fails) == 0})
	}
	return out
}

// worstRecovery is a policy's longest recovery over the seeds and its most
// changes to recover.
func worstRecovery(ix index, seeds []uint64, variant, trace, policy string) (float64, int) {
	rec, ch := 0.0, 0
	for _, s := range seeds {
		r, _ := ix.get(variant, s, trace, policy)
		rec, ch = math.Max(rec, r.RecoverySeconds), max(ch, r.ChangesToRecover)
	}
	return rec, ch
}

// bestRecovery says which adaptive baseline (hpa-like, kpa-like; static-best
// is sized for the whole trace and has nothing to recover from) recovered
// soonest on a trace (worst seed), or that none did within the target.
func bestRecovery(ix index, seeds []uint64, variant, trace string) string {
	best, bestRec := "", math.Inf(1)
	for _, p := range []string{"hpa-like", "kpa-like"} {
		if rec, _ := worstRecovery(ix, seeds, variant, trace, p); rec < bestRec {
			best, bestRec = p, rec
		}
	}
	if bestRec > 60 {
		return fmt.Sprintf("no baseline within 60 s, best %s %.0f s", best, bestRec)
	}
	return fmt.Sprintf("%s %.0f s", best, bestRec)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("… %d more", len(s)-n))
	}
	return s
}

// stat is the mean and the worst of a figure over seeds.
type stat struct{ mean, worst float64 }

func over(rows []Row, f func(Row) float64) stat {
	var s stat
	for i, r := range rows {
		v := f(r)
		s.mean += v
		if i == 0 || v > s.worst {
			s.worst = v
		}
	}
	if len(rows) > 0 {
		s.mean /= float64(len(rows))
	}
	return s
}

// Policies are the scored policies, in table order.
var Policies = []string{"pacer", "static-best", "hpa-like", "kpa-like"}

// Table formats the base case as Markdown: per trace and policy, the mean
// and the worst over the seeds.
func Table(c Card, variant string) string {
	var b strings.Builder
	b.WriteString("| trace | policy | violating windows (mean / worst) | pod-seconds (mean / worst) | recovery s (worst) | changes (mean) | to recover (worst) | reversals (worst) / load changes | throughput at objective (mean req/s) | peak connections / budget | refused requests (worst) |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, tr := range c.Options.Traces {
		for _, p := range Policies {
			var rs []Row
			for _, r := range c.Rows {
				if r.Variant == variant && r.Trace == tr.Name && r.Policy == p {
					rs = append(rs, r)
				}
			}
			if len(rs) == 0 {
				continue
			}
			vw := over(rs, func(r Row) float64 { return float64(r.ViolatingWindows) })
			ps := over(rs, func(r Row) float64 { return r.PodSeconds })
			fmt.Fprintf(&b, "| %s | %s | %.1f / %.0f | %.0f / %.0f | %.0f | %.1f | %.0f | %.0f / %d | %.1f | %.0f / %d | %.0f |\n",
				tr.Name, p, vw.mean, vw.worst, ps.mean, ps.worst,
				over(rs, func(r Row) float64 { return r.RecoverySeconds }).worst,
				over(rs, func(r Row) float64 { return float64(r.Changes) }).mean,
				over(rs, func(r Row) float64 { return float64(r.ChangesToRecover) }).worst,
				over(rs, func(r Row) float64 { return float64(r.Reversals) }).worst, rs[0].LoadChanges,
				over(rs, func(r Row) float64 { return r.ThroughputAtObjective }).mean,
				over(rs, func(r Row) float64 { return float64(r.PeakConnections) }).worst, rs[0].ConnectionBudget,
				over(rs, func(r Row) float64 { return r.RefusedRequests }).worst)
		}
	}
	return b.String()
}

// Sensitivity formats, per variant and policy, the totals over all traces
// (mean and worst over the seeds) and how many targets pacer met.
func Sensitivity(c Card, targets []Target) string {
	var b strings.Builder
	b.WriteString("| variant | policy | violating windows, all traces (mean / worst seed) | pod-seconds, all traces (mean) | refused requests (mean) | pacer's targets met |\n")
	b.WriteString("| --- | --- | ---: | ---: | ---: | --- |\n")
	for _, v := range c.Options.Variants {
		met := 0
		for _, t := range targets {
			if t.Variant == v.Name && t.Met {
				met++
			}
		}
		for _, p := range Policies {
			var vws, pss, refs []float64
			for _, s := range c.Options.Seeds {
				var vw, ps, ref float64
				for _, r := range c.Rows {
					if r.Variant == v.Name && r.Seed == s && r.Policy == p {
						vw += float64(r.ViolatingWindows)
						ps += r.PodSeconds
						ref += r.RefusedRequests
					}
				}
				vws, pss, refs = append(vws, vw), append(pss, ps), append(refs, ref)
			}
			cell := ""
			if p == "pacer" {
				cell = fmt.Sprintf("%d of %d", met, len(TargetNames))
			}
			fmt.Fprintf(&b, "| %s | %s | %.1f / %.0f | %.0f | %.0f | %s |\n", v.Name, p, mean(vws), slices.Max(vws), mean(pss), mean(refs), cell)
		}
	}
	return b.String()
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / math.Max(1, float64(len(xs)))
}

// PerTrace formats one line per variant and trace: each policy's violating
// windows and pod-seconds, means over the seeds.
func PerTrace(c Card) string {
	type key struct{ v, t, p string }
	sum := map[key][2]float64{}
	n := map[key]float64{}
	for _, r := range c.Rows {
		k := key{r.Variant, r.Trace, r.Policy}
		s := sum[k]
		sum[k] = [2]float64{s[0] + float64(r.ViolatingWindows), s[1] + r.PodSeconds}
		n[k]++
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%-18s %-40s", "variant", "trace")
	for _, p := range Policies {
		fmt.Fprintf(&b, " %18s", p)
	}
	b.WriteString("\n")
	for _, v := range c.Options.Variants {
		for _, tr := range c.Options.Traces {
			fmt.Fprintf(&b, "%-18s %-40s", v.Name, tr.Name)
			for _, p := range Policies {
				k := key{v.Name, tr.Name, p}
				s := sum[k]
				fmt.Fprintf(&b, " %5.1f vw %7.0f ps", s[0]/max(n[k], 1), s[1]/max(n[k], 1))
			}
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Families formats, for one variant, each family's violating windows and
// pod-seconds per policy, summed over its traces, mean over the seeds. A
// combined trace counts in its first family.
func Families(c Card, variant string) string {
	type key struct{ f, p string }
	vw, ps := map[key]float64{}, map[key]float64{}
	traces := map[string]int{}
	var order []string
	family := func(trace string) string {
		parts := strings.SplitN(trace, "-", 3)
		if len(parts) < 3 {
			return trace
		}
		f, _, _ := strings.Cut(parts[2], "+")
		return f
	}
	for _, tr := range c.Options.Traces {
		f := family(tr.Name)
		if traces[f] == 0 {
			order = append(order, f)
		}
		traces[f]++
	}
	seeds := float64(max(len(c.Options.Seeds), 1))
	for _, r := range c.Rows {
		if r.Variant != variant {
			continue
		}
		k := key{family(r.Trace), r.Policy}
		vw[k] += float64(r.ViolatingWindows) / seeds
		ps[k] += r.PodSeconds / seeds
	}
	var b strings.Builder
	b.WriteString("| family | traces |")
	for _, p := range Policies {
		fmt.Fprintf(&b, " %s: violating windows / pod-seconds |", p)
	}
	b.WriteString("\n| --- | ---: |" + strings.Repeat(" ---: |", len(Policies)) + "\n")
	for _, f := range order {
		fmt.Fprintf(&b, "| %s | %d |", f, traces[f])
		for _, p := range Policies {
			fmt.Fprintf(&b, " %.1f / %.0f |", vw[key{f, p}], ps[key{f, p}])
		}
		b.WriteString("\n")
	}
	return b.String()
}
