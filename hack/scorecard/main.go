// Command scorecard runs the tuning scorecard: the operator's tuner and
// three baselines driven through the simulator's load traces, seeds and
// model variants. It prints the targets and writes
// docs/tuning-scorecard.md and docs/tuning-scorecard.json.
//
//	go run ./hack/scorecard [-docs docs] [-v]
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pacer-dev/pacer/controllers/tuning/sim"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scorecard:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("scorecard", flag.ContinueOnError)
	docs := fs.String("docs", "docs", "directory to write tuning-scorecard.md and .json to; empty to write nothing")
	verbose := fs.Bool("v", false, "print pacer's decisions on the 2× step (base case, first seed)")
	split := fs.String("split", "report", "which generated traces: dev (to work on), report (published; read only once the code is final), or "+checkSplits()+" (to check a change on traces it was not made on)")
	limit := fs.Int("traces", 0, "run only the first N traces of the split (0: all)")
	seeds := fs.Int("seeds", 5, "seeds per run")
	only := fs.String("variants", "", "run only the variants whose name contains this (e.g. @30s)")
	show := fs.String("show", "", "print every window and decision of pacer's run of the trace with this name (the first variant, the -seed'th seed), and stop")
	showSeed := fs.Int("seed", 1, "with -show: which seed to run (1 to 5)")
	perTrace := fs.Bool("per-trace", false, "print one line per trace and variant: each policy's violating windows and pod-seconds (mean over seeds)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	began := time.Now()
	opt := sim.DefaultOptions()
	switch *split {
	case "dev":
		opt.Traces = sim.Generate(sim.DevSplit)
	case "report":
	default:
		i := slices.IndexFunc(sim.CheckSplits, func(s sim.Split) bool { return s.Name == *split })
		if i < 0 {
			return fmt.Errorf("-split %q: want dev, report or a check split (%s)", *split, checkSplits())
		}
		opt.Traces = sim.Generate(sim.CheckSplits[i])
	}
	if *limit > 0 && *limit < len(opt.Traces) {
		opt.Traces = opt.Traces[:*limit]
	}
	opt.Seeds = opt.Seeds[:min(max(*seeds, 1), len(opt.Seeds))]
	if *only != "" {
		var vs []sim.Variant
		for _, v := range opt.Variants {
			if strings.Contains(v.Name, *only) {
				vs = append(vs, v)
			}
		}
		opt.Variants = vs
	}
	if *show != "" {
		if *showSeed < 1 || *showSeed > len(opt.Seeds) {
			return fmt.Errorf("-seed %d: want 1 to %d", *showSeed, len(opt.Seeds))
		}
		opt.Seeds = opt.Seeds[*showSeed-1:]
		return showRun(stdout, opt, *show)
	}
	if *split != "report" || *limit > 0 || *only != "" || *seeds != 5 {
		*docs = "" // only the whole report split is published
	}
	card := sim.Scorecard(sim.DefaultScenario(), opt)
	elapsed := time.Since(began).Round(100 * time.Millisecond)
	if *perTrace {
		fmt.Fprint(stdout, sim.PerTrace(card))
		fmt.Fprintln(stdout)
	}
	if *verbose {
		fmt.Fprint(stdout, sim.Table(card, sim.DefaultVariant))
		fmt.Fprintln(stdout)
	}
	targets := sim.Targets(card)
	fmt.Fprint(stdout, sim.Sensitivity(card, targets))
	fmt.Fprintln(stdout)
	for _, t := range targets {
		met := "met"
		if !t.Met {
			met = "NOT MET"
		}
		fmt.Fprintf(stdout, "%-15s %-42s %s: %s\n", t.Variant, t.Name, met, t.Got)
	}
	fmt.Fprintf(stdout, "\n%d rows in %s\n", len(card.Rows), elapsed)
	if *verbose {
		for _, d := range card.Example.Decisions {
			fmt.Fprintf(stdout, "t=%4.0fs %s\n", d.At, d.Summary)
			for _, c := range d.Changes {
				fmt.Fprintf(stdout, "        %s\n", c.Reason)
			}
		}
	}
	if *docs == "" {
		return nil
	}
	js, err := sim.RowsJSON(card.Rows)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*docs, "tuning-scorecard.json"), js, 0o644); err != nil {
		return err
	}
	desc := fmt.Sprintf("%d rows", len(card.Rows))
	return os.WriteFile(filepath.Join(*docs, "tuning-scorecard.md"), []byte(sim.Markdown(card, desc)), 0o644)
}

// checkSplits names the check splits, for the -split flag's help and errors.
func checkSplits() string {
	var names []string
	for _, s := range sim.CheckSplits {
		names = append(names, s.Name)
	}
	return strings.Join(names, ", ")
}

// showRun prints pacer's run of one trace, window by window.
func showRun(w io.Writer, opt sim.Options, name string) error {
	for _, tr := range opt.Traces {
		if tr.Name != name {
			continue
		}
		sc := opt.Variants[0].Scenario(sim.DefaultScenario())
		sc.Seed = opt.Seeds[0]
		res := sim.Run(sc, tr, sim.Pacer{})
		fmt.Fprintf(w, "%s (%s), %s\n", tr.Name, tr.About, opt.Variants[0].Name)
		best := sim.StaticBest(sc, tr, opt.Sweep)
		fmt.Fprintf(w, "static-best: %s, %d violating windows\n", sim.Describe(best.Settings), sim.Run(sc, tr, best).Violations())
		d := 0
		for _, win := range res.Windows {
			for ; d < len(res.Decisions) && res.Decisions[d].At <= win.End; d++ {
				fmt.Fprintf(w, "  t=%5.0f %s\n", res.Decisions[d].At, res.Decisions[d].Summary)
				for _, c := range res.Decisions[d].Changes {
					fmt.Fprintf(w, "          %s\n", c.Reason)
				}
			}
			ok := "ok"
			if !win.InObjective {
				ok = "VIOLATED"
			}
			s := win.Settings
			fmt.Fprintf(w, "t=%5.0f arrived %6.0f served %6.0f failed %5.0f pods %2d p99 %6.1fms %-8s R=%d W=%d P=%d C=%d\n",
				win.End, win.Arrived, win.Served, win.Failed, win.Pods, win.P99*1000, ok, s.Replicas, s.MaxInFlight, s.PoolMaxConns, s.CacheMaxEntries)
		}
		return nil
	}
	return fmt.Errorf("no trace %q", name)
}
