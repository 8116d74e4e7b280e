package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// A family makes traces of one kind of load with random parameters. The
// scorecard's generated traces come from these, so the tuner is judged on
// load shapes nobody fitted it to: a rule that passes one trace does not
// pass a family.
type family struct {
	name string
	make func(r *rand.Rand, base float64) Trace
}

// Split names a fixed set of generated traces. Work is done on the
// development split; the report split is only read, and published, once
// the code is final.
type Split struct {
	Name string
	// Seed draws every trace's family and parameters.
	Seed uint64
	// N is the number of traces.
	N int
}

// The two splits. Their seeds are fixed so the splits never change.
var (
	DevSplit    = Split{Name: "dev", Seed: 0x5eed_0d0e, N: 100}
	ReportSplit = Split{Name: "report", Seed: 0x5eed_4e70, N: 100}
)

// CheckSplits are further splits to check a change on traces it was not
// made on, before the report split is read; each is spent once a change
// has been worked on it (docs/tuning.md says which).
var CheckSplits = []Split{
	{Name: "fresh", Seed: 0x5eed_f7e5, N: 100},
	{Name: "fresh4", Seed: 0x5eed_0004, N: 100},
	{Name: "fresh5", Seed: 0x5eed_0005, N: 100},
}

// generatedLength is the scored length of a generated trace; its warm-up is
// generatedWarmup.
const (
	generatedLength = 20 * time.Minute
	generatedWarmup = 4 * time.Minute
)

// Generate returns the split's traces: each drawn from a family chosen at
// random, a fifth of them combining two families, at a base rate between
// 0.5× and 2× BaseRate.
func Generate(s Split) []Trace {
	r := rand.New(rand.NewPCG(s.Seed, s.Seed^0x9e3779b97f4a7c15))
	fams := families()
	out := make([]Trace, 0, s.N)
	for i := range s.N {
		base := BaseRate * math.Exp(uniform(r, math.Log(0.5), math.Log(2)))
		a := fams[r.IntN(len(fams))]
		tr := a.make(r, base)
		if r.Float64() < 0.2 {
			b := fams[r.IntN(len(fams))]
			tr = combine(tr, b.make(r, base))
		}
		tr.Name = fmt.Sprintf("%s-%03d-%s", s.Name, i, tr.Name)
		tr.Warmup, tr.Duration = generatedWarmup, generatedLength
		out = append(out, tr)
	}
	return out
}

func uniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// scored is the scored length in seconds.
var scored = generatedLength.Seconds()

func families() []family {
	return []family{
		{"step", func(r *rand.Rand, base float64) Trace {
			at, f := uniform(r, 180, scored/2), uniform(r, 1.3, 3)
			if r.Float64() < 0.4 {
				f = 1 / f // a step down
			}
			return Trace{Name: "step", About: fmt.Sprintf("%.1f× at %.0f s", f, at), Changes: []float64{at}, Steps: []float64{at}, Step2x: f >= 1.8,
				Load: func(t float64) Load { return normal(base * pick(t >= at, f, 1)) }}
		}},
		{"ramp", func(r *rand.Rand, base float64) Trace {
			a := uniform(r, 120, scored/3)
			b := a + uniform(r, 120, 900)
			f := uniform(r, 0.3, 3)
			return Trace{Name: "ramp", About: fmt.Sprintf("to %.1f× from %.0f s to %.0f s", f, a, b), Changes: []float64{a},
				Load: func(t float64) Load { return normal(base * ramp(t, a, b, 1, f)) }}
		}},
		{"bursts", func(r *rand.Rand, base float64) Trace {
			amp, dur, period := uniform(r, 1.5, 3), uniform(r, 5, 30), uniform(r, 45, 180)
			from, to := uniform(r, 60, 300), scored-uniform(r, 120, 400)
			var ch []float64
			for t := from; t < to; t += period {
				ch = append(ch, t, t+dur)
			}
			return Trace{Name: "bursts", About: fmt.Sprintf("%.1f× for %.0f s every %.0f s", amp, dur, period), Changes: ch,
				Load: func(t float64) Load {
					on := t >= from && t < to && math.Mod(t-from, period) < dur
					return normal(base * pick(on, amp, 1))
				}}
		}},
		{"flash", func(r *rand.Rand, base float64) Trace {
			at, peak, rise, decay := uniform(r, 120, scored/2), uniform(r, 2, 5), uniform(r, 10, 60), uniform(r, 60, 600)
			return Trace{Name: "flash", About: fmt.Sprintf("to %.1f× in %.0f s at %.0f s, decaying over %.0f s", peak, rise, at, decay),
				Changes: []float64{at, at + rise}, Steps: []float64{at},
				Load: func(t float64) Load {
					switch {
					case t < at:
						return normal(base)
					case t < at+rise:
						return normal(base * ramp(t, at, at+rise, 1, peak))
					}
					return normal(base * (1 + (peak-1)*math.Exp(-(t-at-rise)/decay)))
				}}
		}},
		{"daily", func(r *rand.Rand, base float64) Trace {
			amp, period, phase := uniform(r, 0.2, 0.7), uniform(r, 900, 3600), uniform(r, 0, 2*math.Pi)
			var ch []float64
			for t := 0.0; t < scored; t += period / 2 {
				ch = append(ch, t)
			}
			return Trace{Name: "daily", About: fmt.Sprintf("±%.0f%% over %.0f s", 100*amp, period), Changes: ch,
				Load: func(t float64) Load { return normal(base * (1 + amp*math.Sin(phase+2*math.Pi*t/period))) }}
		}},
		{"alternating", func(r *rand.Rand, base float64) Trace {
			// Two levels switching near the default scale-down window (300 s).
			every, f := 300*uniform(r, 0.6, 1.4), uniform(r, 1.5, 2.5)
			var ch []float64
			for t := every; t < scored; t += every {
				ch = append(ch, t)
			}
			return Trace{Name: "alternating", About: fmt.Sprintf("1× and %.1f× every %.0f s", f, every), Changes: ch,
				Load: func(t float64) Load { return normal(base * pick(int(t/every)%2 == 1, f, 1)) }}
		}},
		{"slow-db", func(r *rand.Rand, base float64) Trace {
			at, dur, f := uniform(r, 120, scored/2), uniform(r, 180, 900), uniform(r, 1.5, 4)
			return Trace{Name: "slow-db", About: fmt.Sprintf("query time ×%.1f for %.0f s at %.0f s", f, dur, at),
				Changes: []float64{at, at + dur}, Steps: []float64{at},
				Load: func(t float64) Load {
					l := normal(base)
					if t >= at && t < at+dur {
						l.DBSlow = f
					}
					return l
				}}
		}},
		{"cache-collapse", func(r *rand.Rand, base float64) Trace {
			at, dur := uniform(r, 120, scored/2), uniform(r, 180, 900)
			return Trace{Name: "cache-collapse", About: fmt.Sprintf("uniform keys for %.0f s at %.0f s", dur, at),
				Changes: []float64{at, at + dur}, Steps: []float64{at},
				Load: func(t float64) Load {
					l := normal(base)
					l.Hostile = t >= at && t < at+dur
					return l
				}}
		}},
		{"tight-budget", func(r *rand.Rand, base float64) Trace {
			at, f := uniform(r, 180, scored/2), uniform(r, 1.5, 2.5)
			budget := int32(uniform(r, 30, 60))
			return Trace{Name: "tight-budget", About: fmt.Sprintf("budget %d, %.1f× at %.0f s", budget, f, at),
				Changes: []float64{at}, Steps: []float64{at}, Step2x: f >= 1.8,
				Adjust: func(sc *Scenario) {
					sc.Model.MaxConnections, sc.Budget = int(budget), budget
					sc.Start.PoolMaxConns = max(2, budget/sc.Start.Replicas-1-2)
				},
				Load: func(t float64) Load { return normal(base * pick(t >= at, f, 1)) }}
		}},
	}
}

// combine is a's load times b's rate factor, with b's database and cache
// events; the budget adjustments of both apply.
func combine(a, b Trace) Trace {
	c := a
	c.Name = a.Name + "+" + b.Name
	c.About = a.About + "; " + b.About
	c.Changes = append(append([]float64(nil), a.Changes...), b.Changes...)
	c.Steps = append(append([]float64(nil), a.Steps...), b.Steps...)
	c.Step2x = a.Step2x || b.Step2x
	bl0 := b.Load(0).Rate
	c.Load = func(t float64) Load {
		la, lb := a.Load(t), b.Load(t)
		la.Rate *= lb.Rate / bl0
		la.DBSlow = math.Max(la.DBSlow, lb.DBSlow)
		la.Hostile = la.Hostile || lb.Hostile
		return la
	}
	if a.Adjust != nil || b.Adjust != nil {
		c.Adjust = func(sc *Scenario) {
			for _, f := range []func(*Scenario){a.Adjust, b.Adjust} {
				if f != nil {
					f(sc)
				}
			}
		}
	}
	return c
}

func pick(cond bool, a, b float64) float64 {
	if cond {
		return a
	}
	return b
}
