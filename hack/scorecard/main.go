// Command scorecard runs the tuning scorecard: the operator's tuner and
// three baselines driven through the simulator's load traces, seeds and
// model variants. It prints the targets and writes
// docs/tuning-scorecard.md and docs/tuning-scorecard.json.
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
	verbose := fs.Bool("v", false, "print pacer's decisions on the 2× step (base case, first seed)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	began := time.Now()
	opt := sim.DefaultOptions()
	card := sim.Scorecard(sim.DefaultScenario(), opt)
	elapsed := time.Since(began).Round(100 * time.Millisecond)
	fmt.Fprint(stdout, sim.Table(card, sim.DefaultVariant))
	fmt.Fprintln(stdout)
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
	js, err := json.MarshalIndent(card.Rows, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*docs, "tuning-scorecard.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	desc := fmt.Sprintf("%d rows", len(card.Rows))
	return os.WriteFile(filepath.Join(*docs, "tuning-scorecard.md"), []byte(sim.Markdown(card, desc)), 0o644)
}
