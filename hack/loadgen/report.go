package main

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

// loadAverage is the 1-minute load average, to show how busy the machine was.
func loadAverage() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(raw))[0]
}

func render(o benchOptions, scenarios []scenario, results []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Measured %s, %d cores (GOMAXPROCS %d), %d keep-alive connections, %s measured per scenario in %d alternating rounds (each after a %s warm-up); load generator, servers and PostgreSQL on the same machine; 1-minute load average %s at the start, %s at the end.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.NumCPU(), runtime.GOMAXPROCS(0), o.conns, o.duration, o.rounds, o.warmup, o.loadBefore, loadAverage())
	b.WriteString("| scenario | req/s | p50 ms | p99 ms | p99 ms of hits / misses (X-Cache) | errors | server CPU µs/req | PostgreSQL CPU µs/req | vs baseline (req/s; server CPU per request) | target | pacer-api RSS (now / peak) |\n")
	b.WriteString("| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | --- |\n")
	for i, s := range scenarios {
		r := results[i]
		if r.Duration == 0 {
			continue // skipped by -only
		}
		ratio, target := "", ""
		if s.pacer && results[s.vs].Duration > 0 {
			base := results[s.vs]
			ratio = fmt.Sprintf("%.0f%% of %q", 100*r.RPS()/base.RPS(), scenarios[s.vs].name)
			if r.cpuRequests > 0 && base.cpuRequests > 0 && base.cpu > 0 {
				perReq := func(x result) float64 { return float64(x.cpu) / float64(x.cpuRequests) }
				ratio += fmt.Sprintf("; CPU/req %.2f×", perReq(r)/perReq(base))
			}
		}
		if s.target > 0 && results[s.vs].Duration > 0 {
			verdict := "met"
			if r.RPS() < s.target*results[s.vs].RPS() || r.P99 >= 10*time.Millisecond || r.Errors > 0 {
				verdict = "MISSED"
			}
			target = fmt.Sprintf("≥ %.0f%%, p99 < 10 ms, 0 errors: %s", 100*s.target, verdict)
		}
		rss := ""
		if s.pacer {
			rss = r.rss
		}
		cpu, pgCPU := "?", "?"
		if r.cpuRequests > 0 {
			cpu = fmt.Sprintf("%.0f", float64(r.cpu.Microseconds())/float64(r.cpuRequests))
			// A postgres process that exits mid-round takes its CPU time
			// with it, so the figure is approximate and never below 0.
			pgCPU = fmt.Sprintf("%.0f", max(0, float64(r.pgCPU.Microseconds())/float64(r.cpuRequests)))
		}
		fmt.Fprintf(&b, "| %s | %.0f | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n", s.name, r.RPS(), ms(r.P50), ms(r.P99), hitsAndMisses(r), r.Errors, cpu, pgCPU, ratio, target, rss)
	}
	return b.String()
}

// hitsAndMisses is "p99 of hits / p99 of misses (share of hits)", or empty
// when no answer said which it was.
func hitsAndMisses(r result) string {
	n := r.Hit.Count() + r.Miss.Count()
	if n == 0 {
		return ""
	}
	p99 := func(s split) string {
		if s.Count() == 0 {
			return "–"
		}
		return ms(s.P99)
	}
	return fmt.Sprintf("%s / %s (%.0f%% hits)", p99(r.Hit), p99(r.Miss), 100*float64(r.Hit.Count())/float64(n))
}
