package sim

import (
	"runtime"
	"sync"
)

// Variant is a change of the model for the sensitivity table.
type Variant struct {
	Name, About string
	Apply       func(*Model)
	// Dynamic is true when the change touches only what a static setting
	// never meets (pods starting, configs propagating after the start):
	// static-best's search and runs are then the base case's.
	Dynamic bool
}

// DefaultVariant is the base case.
const DefaultVariant = "default"

// Variants are the scorecard's: the base case, then one change each.
func Variants() []Variant {
	return []Variant{
		{Name: DefaultVariant, About: "the model as described", Apply: func(*Model) {}},
		{Name: "noise-10%", About: "arrival noise 10% instead of 3%", Apply: func(m *Model) { m.Noise = 0.10 }},
		{Name: "pod-start-60s", About: "pods ready 60 s after they are asked for instead of 10 s", Apply: func(m *Model) { m.PodStartup = 60 }, Dynamic: true},
		{Name: "contention-off", About: "no contention term (CPU per request independent of requests in flight)", Apply: func(m *Model) { m.Overhead = 0 }},
	}
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
	Example Result
}

// Scorecard runs every policy on every trace, seed and variant. The
// searches (static-best per trace and variant, the baselines' settings
// per variant) use the first seed; every policy is then scored on every
// seed with what the search chose.
func Scorecard(sc Scenario, opt Options) Card {
	card := Card{Scenario: sc, Options: opt, Baselines: map[string][2]Fixed{}}
	scenarios := make([]Scenario, len(opt.Variants))
	for i, v := range opt.Variants {
		scenarios[i] = sc
		v.Apply(&scenarios[i].Model)
		scenarios[i].Seed = opt.Seeds[0]
	}

	// Searches. A baseline's grid runs are on the first seed and kept:
	// the chosen point's are its first-seed rows below.
	type runKey struct {
		v, t int
		pol  Policy
	}
	var mu sync.Mutex
	searched := map[runKey]Row{}
	statics := make([][]Static, len(opt.Variants))
	fixed := make([][2]Fixed, len(opt.Variants))
	var jobs []func()
	for vi := range opt.Variants {
		statics[vi] = make([]Static, len(opt.Traces))
		for ti, tr := range opt.Traces {
			if vi == 0 || !opt.Variants[vi].Dynamic {
				jobs = append(jobs, func() { statics[vi][ti] = StaticBest(scenarios[vi], tr, opt.Sweep) })
			}
			var grid []Policy
			for _, f := range opt.Sweep.HPA {
				grid = append(grid, HPALike{Fixed: f})
			}
			for _, f := range opt.Sweep.KPA {
				grid = append(grid, KPALike{Fixed: f})
			}
			for _, pol := range grid {
				jobs = append(jobs, func() {
					row := Score(tr.withDefaults(), Run(scenarios[vi], tr, pol))
					mu.Lock()
					defer mu.Unlock()
					searched[runKey{vi, ti, pol}] = row
				})
			}
		}
	}
	parallel(jobs)
	for vi := range opt.Variants {
		score := func(pol Policy) fixedScore {
			var s fixedScore
			for ti := range opt.Traces {
				r := searched[runKey{vi, ti, pol}]
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
		fixed[vi] = [2]Fixed{pickFixed(opt.Sweep.HPA, hs), pickFixed(opt.Sweep.KPA, ks)}
	}

	// Runs.
	type key struct{ v, t, s, p int }
	rows := map[key]Row{}
	jobs = jobs[:0]
	for vi, v := range opt.Variants {
		card.Baselines[v.Name] = fixed[vi]
		pols := []Policy{Pacer{}, statics[vi][0], HPALike{Fixed: fixed[vi][0]}, KPALike{Fixed: fixed[vi][1]}}
		for ti, tr := range opt.Traces {
			pols := append([]Policy(nil), pols...)
			pols[1] = statics[vi][ti]
			for si, seed := range opt.Seeds {
				for pi, pol := range pols {
					if pi == 1 && vi > 0 && v.Dynamic {
						continue // the base case's row, below
					}
					jobs = append(jobs, func() {
						s := scenarios[vi]
						s.Seed = seed
						row, reused := searched[runKey{vi, ti, pol}]
						var res Result
						if !reused || si > 0 {
							res = Run(s, tr, pol)
							row = Score(tr.withDefaults(), res)
						}
						row.Seed, row.Variant = seed, v.Name
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
						if vi == 0 && si == 0 && pi == 0 && tr.Step2x && card.Example.Trace == "" {
							card.Example = res
						}
					})
				}
			}
		}
	}
	parallel(jobs)
	for vi, v := range opt.Variants {
		for ti := range opt.Traces {
			for si := range opt.Seeds {
				for pi := range 4 {
					row, ok := rows[key{vi, ti, si, pi}]
					if !ok && v.Dynamic {
						row = rows[key{0, ti, si, pi}]
						row.Variant = v.Name
					}
					card.Rows = append(card.Rows, row)
				}
			}
		}
	}
	return card
}

// DefaultOptions are the scorecard's.
func DefaultOptions() Options {
	return Options{Traces: Traces(), Variants: Variants(), Seeds: []uint64{1, 2, 3, 4, 5}, Sweep: DefaultSweep()}
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
