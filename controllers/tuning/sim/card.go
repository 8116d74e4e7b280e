package sim

import (
	"fmt"
	"runtime"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Variant is one setting of the scorecard's dimensions: the tuning
// interval, and at most one change of the model or the pods.
type Variant struct {
	Name, About string
	// Interval is spec.tuning.interval.
	Interval time.Duration
	// Apply changes the scenario (nil: the base case at Interval).
	Apply func(*Scenario)
	// Model names the model the change leaves for static settings and
	// the baselines: their searches are shared by the variants with the
	// same Model (an interval, a CPU limit or pod start-up changes
	// nothing a static setting or a baseline's choice of per-pod settings
	// depends on).
	Model string
}

// DefaultVariant is the base case: the CRD's default interval.
const DefaultVariant = "default@30s"

// Intervals are the tuning intervals every trace runs at.
var Intervals = []time.Duration{10 * time.Second, 30 * time.Second, 60 * time.Second}

// Variants are the scorecard's: at every interval, the base case, then
// one change each.
func Variants() []Variant {
	var out []Variant
	for _, iv := range Intervals {
		at := func(kind, model, about string, apply func(*Scenario)) Variant {
			return Variant{Name: fmt.Sprintf("%s@%ds", kind, int(iv.Seconds())), About: about, Interval: iv, Apply: apply, Model: model}
		}
		out = append(out,
			at("default", "default", "the model as described", nil),
			at("no-cpu-limit", "default", "pods without a CPU limit: the tuner is told none (the HPA still reads CPU against the request)", func(sc *Scenario) { sc.NoCPULimit = true }),
			at("noise-10%", "noise-10%", "arrival noise 10% instead of 3%", func(sc *Scenario) { sc.Model.Noise = 0.10 }),
			at("pod-start-60s", "default", "pods ready 60 s after they are asked for instead of 10 s", func(sc *Scenario) { sc.Model.PodStartup = 60 }),
		)
	}
	return out
}

// Scenario is sc as v runs it.
func (v Variant) Scenario(sc Scenario) Scenario {
	sc.Tuning = *sc.Tuning.DeepCopy()
	if v.Interval > 0 {
		sc.Tuning.Interval = &metav1.Duration{Duration: v.Interval}
	}
	if v.Apply != nil {
		v.Apply(&sc)
	}
	return sc
}

// Options say what a scorecard runs.
type Options struct {
	Traces   []Trace
	Variants []Variant
	Seeds    []uint64
	Sweep    SweepSpace
}

// Card is a scorecard's outcome.
type Card struct {
	Scenario Scenario
	Options  Options
	Rows     []Row
	// Baselines are hpa-like's and kpa-like's per-pod settings, per variant.
	Baselines map[string][2]Fixed
	// Example is pacer's run on the first trace with a 2× step, base case, first seed.
	Example      Result
	exampleTrace int
}

// Scorecard runs every policy on every trace, seed and variant. The
// searches (static-best per trace, the baselines' per-pod settings over
// all traces) run once per model on the first seed; every policy is then
// run on every variant and seed with what the search chose.
func Scorecard(sc Scenario, opt Options) Card {
	card := Card{Scenario: sc, Options: opt, Baselines: map[string][2]Fixed{}}
	models := map[string]Scenario{}
	var kinds []string
	for _, v := range opt.Variants {
		if _, ok := models[v.Model]; !ok {
			s := v.Scenario(sc)
			s.Seed = opt.Seeds[0]
			models[v.Model] = s
			kinds = append(kinds, v.Model)
		}
	}

	// Searches.
	type gridKey struct {
		model string
		trace int
		pol   Policy
	}
	var mu sync.Mutex
	searched := map[gridKey]Row{}
	statics := map[string][]Static{}
	var jobs []func()
	for _, k := range kinds {
		statics[k] = make([]Static, len(opt.Traces))
		for ti, tr := range opt.Traces {
			jobs = append(jobs, func() { statics[k][ti] = StaticBest(models[k], tr, opt.Sweep) })
			for _, pol := range baselineGrid(opt.Sweep) {
				jobs = append(jobs, func() {
					row := Score(tr.withDefaults(), Run(models[k], tr, pol))
					mu.Lock()
					defer mu.Unlock()
					searched[gridKey{k, ti, pol}] = row
				})
			}
		}
	}
	parallel(jobs)
	fixed := map[string][2]Fixed{}
	for _, k := range kinds {
		score := func(pol Policy) fixedScore {
			var s fixedScore
			for ti := range opt.Traces {
				r := searched[gridKey{k, ti, pol}]
				s.violations += r.ViolatingWindows
				s.podSeconds += r.PodSeconds
			}
			return s
		}
		var hs, ks []fixedScore
		for _, f := range opt.Sweep.HPA {
			hs = append(hs, score(HPALike{Fixed: f}))
		}
		for _, f := range opt.Sweep.KPA {
			ks = append(ks, score(KPALike{Fixed: f}))
		}
		fixed[k] = [2]Fixed{pickFixed(opt.Sweep.HPA, hs), pickFixed(opt.Sweep.KPA, ks)}
	}

	// Runs.
	type key struct{ v, t, s, p int }
	rows := map[key]Row{}
	jobs = jobs[:0]
	for vi, v := range opt.Variants {
		card.Baselines[v.Name] = fixed[v.Model]
		vsc := v.Scenario(sc)
		for ti, tr := range opt.Traces {
			pols := []Policy{Pacer{}, statics[v.Model][ti], HPALike{Fixed: fixed[v.Model][0]}, KPALike{Fixed: fixed[v.Model][1]}}
			for si, seed := range opt.Seeds {
				for pi, pol := range pols {
					jobs = append(jobs, func() {
						s := vsc
						s.Seed = seed
						res := Run(s, tr, pol)
						row := Score(tr.withDefaults(), res)
						row.Seed, row.Variant = seed, v.Name
						row.Interval, row.CPULimit = int(s.interval().Seconds()), !s.NoCPULimit
						switch p := pol.(type) {
						case Static:
							row.Static = Describe(p.Settings)
						case HPALike:
							row.Static = p.Fixed.String()
						case KPALike:
							row.Static = p.Fixed.String()
						}
						mu.Lock()
						defer mu.Unlock()
						rows[key{vi, ti, si, pi}] = row
						if v.Name == DefaultVariant && si == 0 && pi == 0 && tr.Step2x && (card.Example.Trace == "" || ti < card.exampleTrace) {
							card.Example, card.exampleTrace = res, ti
						}
					})
				}
			}
		}
	}
	parallel(jobs)
	for vi := range opt.Variants {
		for ti := range opt.Traces {
			for si := range opt.Seeds {
				for pi := range 4 {
					card.Rows = append(card.Rows, rows[key{vi, ti, si, pi}])
				}
			}
		}
	}
	return card
}

// baselineGrid is every grid point of both baselines' searches.
func baselineGrid(sw SweepSpace) []Policy {
	var grid []Policy
	for _, f := range sw.HPA {
		grid = append(grid, HPALike{Fixed: f})
	}
	for _, f := range sw.KPA {
		grid = append(grid, KPALike{Fixed: f})
	}
	return grid
}

// DefaultOptions are the scorecard's.
func DefaultOptions() Options {
	return Options{Traces: Generate(ReportSplit), Variants: Variants(), Seeds: []uint64{1, 2, 3, 4, 5}, Sweep: DefaultSweep()}
}

// parallel runs the jobs on as many goroutines as there are CPUs.
func parallel(jobs []func()) {
	next := make(chan func())
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for j := range next {
				j()
			}
		})
	}
	for _, j := range jobs {
		next <- j
	}
	close(next)
	wg.Wait()
}
