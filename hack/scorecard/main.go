// Command scorecard runs the tuning scorecard: the real tuning.Decide and
// two baselines driven through the simulator's load traces. It prints a
// table and writes docs/tuning-scorecard.md and docs/tuning-scorecard.json.
//
//	go run ./hack/scorecard [-docs docs] [-v]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	verbose := fs.Bool("v", false, "print pacer's decisions on every trace")
	if err := fs.Parse(args); err != nil {
		return err
	}
	began := time.Now()
	sc := sim.DefaultScenario()
	traces := sim.Traces()
	rows, runs := sim.Scorecard(sc, traces, sim.DefaultSweep())
	fmt.Fprint(stdout, sim.Table(rows))
	fmt.Fprintln(stdout)
	for _, t := range sim.Targets(rows) {
		met := "met"
		if !t.Met {
			met = "NOT MET"
		}
		fmt.Fprintf(stdout, "%-40s want %-45s got %s: %s\n", t.Name, t.Want, t.Got, met)
	}
	fmt.Fprintf(stdout, "\n%d traces × 4 policies in %s\n", len(traces), time.Since(began).Round(time.Millisecond))
	if *verbose {
		for _, tr := range traces {
			for _, res := range runs[tr.Name] {
				if res.Policy != "pacer" {
					continue
				}
				fmt.Fprintf(stdout, "\n## %s\n", tr.Name)
				for _, d := range res.Decisions {
					fmt.Fprintf(stdout, "t=%4.0fs %s\n", d.At, d.Summary)
					for _, c := range d.Changes {
						fmt.Fprintf(stdout, "        %s\n", c.Reason)
					}
				}
			}
		}
	}
	if *docs == "" {
		return nil
	}
	js, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*docs, "tuning-scorecard.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(*docs, "tuning-scorecard.md"), []byte(sim.Markdown(sc, traces, rows, runs)), 0o644)
}
