package scenario

import (
	"fmt"
	"html"
	"math"
	"strings"
	"time"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Point is one value of a line at t seconds.
type Point struct{ T, V float64 }

// Line is one series of a panel.
type Line struct {
	Name, Color string
	Dashed      bool
	// Width is the stroke width (default 2): runs drawn wider underneath
	// stay visible where a later run has the same values.
	Width  float64
	Points []Point
}

// Panel is one chart of the stack: its lines share a y axis, with an
// optional reference line (an objective, a budget).
type Panel struct {
	Title    string
	Lines    []Line
	Ref      float64 // drawn when > 0
	RefLabel string
	// Log draws the y axis in decades (for latencies that span them).
	Log bool
}

// Chart draws four stacked panels over time: p99 against the objective,
// offered and served load, replicas, and workers; decisions are marked
// with vertical lines.
func Chart(rows []WindowRow, decisions []pacerv1.Decision, start time.Time, objective time.Duration) string {
	line := func(name, color string, v func(WindowRow) float64) Line {
		l := Line{Name: name, Color: color}
		for _, r := range rows {
			l.Points = append(l.Points, Point{r.Seconds, v(r)})
		}
		return l
	}
	panels := []Panel{
		{Title: "p99 latency (ms) vs objective", Ref: ms(objective), RefLabel: "objective " + objective.String(),
			Lines: []Line{line("p99", "#d62728", func(r WindowRow) float64 { return r.P99Ms })}},
		{Title: "load (requests/s)", Lines: []Line{
			line("offered", "#7f7f7f", func(r WindowRow) float64 { return r.OfferedRPS }),
			line("served", "#1f77b4", func(r WindowRow) float64 { return r.ServedRPS })}},
		{Title: "replicas (ready pods)", Lines: []Line{
			line("replicas", "#2ca02c", func(r WindowRow) float64 { return float64(r.Replicas) }),
			line("ready", "#98df8a", func(r WindowRow) float64 { return float64(r.ReadyPods) })}},
		{Title: "workers per pod", Lines: []Line{line("workers", "#9467bd", func(r WindowRow) float64 { return float64(r.Workers) })}},
	}
	var marks []float64
	for _, d := range decisions {
		if d.Applied {
			marks = append(marks, d.Time.Sub(start).Seconds())
		}
	}
	return DrawChart("Pacer demo: the tuner under a load step and a spike",
		"time (s); dashed orange lines: settings applied by the tuner", panels, marks)
}

// Run colours of the comparison chart.
var runColors = map[string]string{RunStatic: "#9a9a9a", RunHPAStart: "#2ca02c", RunHPA: "#1f77b4", RunPacer: "#d62728"}

// Run stroke widths: the first run widest, so equal values still show all.
var runWidths = map[string]float64{RunStatic: 5, RunHPAStart: 3.5, RunHPA: 2.5, RunPacer: 1.5}

// ComparePanels are the comparison chart's data: for each run, p99
// against the objective, served load (and the offered load, the same for
// all), ready pods, and Σ pool connections against the budget.
func ComparePanels(runs map[string][]WindowRow, objective time.Duration, budget int32) []Panel {
	p99 := Panel{Title: "p99 latency (ms, log scale) vs objective", Ref: ms(objective), RefLabel: "objective " + objective.String(), Log: true}
	load := Panel{Title: "served load (requests/s)"}
	pods := Panel{Title: "ready pods"}
	conns := Panel{Title: "Σ pool connections (pool × pods) vs budget", Ref: float64(budget), RefLabel: fmt.Sprintf("budget %d", budget)}
	offered := false
	for _, name := range CompareRuns {
		rows, ok := runs[name]
		if !ok {
			continue
		}
		line := func(v func(WindowRow) float64) Line {
			l := Line{Name: name, Color: runColors[name], Width: runWidths[name], Dashed: IsHPARun(name)}
			for _, r := range rows {
				l.Points = append(l.Points, Point{r.Seconds, v(r)})
			}
			return l
		}
		if !offered {
			o := Line{Name: "offered", Color: "#bbbbbb", Dashed: true}
			for _, r := range rows {
				o.Points = append(o.Points, Point{r.Seconds, r.OfferedRPS})
			}
			load.Lines = append(load.Lines, o)
			offered = true
		}
		p99.Lines = append(p99.Lines, line(func(r WindowRow) float64 { return r.P99Ms }))
		load.Lines = append(load.Lines, line(func(r WindowRow) float64 { return r.ServedRPS }))
		pods.Lines = append(pods.Lines, line(func(r WindowRow) float64 { return float64(r.ReadyPods) }))
		conns.Lines = append(conns.Lines, line(func(r WindowRow) float64 { return float64(r.PoolTotal) }))
	}
	return []Panel{p99, load, pods, conns}
}

// CompareChart draws the comparison's runs on the same axes.
func CompareChart(runs map[string][]WindowRow, objective time.Duration, budget int32) string {
	return DrawChart("Pacer demo-compare: the same load against static settings, a real HPA, and Pacer",
		"time since the load started (s); each run is a fresh deployment with a fresh database, one after the other",
		ComparePanels(runs, objective, budget), nil)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// DrawChart renders panels stacked over a shared time axis as SVG, with
// vertical marks at the given times.
func DrawChart(title, footer string, panels []Panel, marks []float64) string {
	const (
		w, panelH, left, right, top, gap = 960, 150, 70, 20, 40, 40
	)
	tMax := 1.0
	for _, p := range panels {
		for _, l := range p.Lines {
			for _, pt := range l.Points {
				tMax = max(tMax, pt.T)
			}
		}
	}
	h := top + len(panels)*(panelH+gap) + 16
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/><text x="%d" y="22" font-size="16">%s</text>`+"\n", w, h, left, html.EscapeString(title))
	x := func(t float64) float64 { return left + t/tMax*float64(w-left-right) }
	for i, p := range panels {
		y0 := float64(top + i*(panelH+gap) + 20)
		var y func(float64) float64
		var ticks []float64
		if p.Log {
			lo, hi := 1.0, 10.0
			for _, l := range p.Lines {
				for _, pt := range l.Points {
					if pt.V > 0 {
						lo, hi = min(lo, pt.V), max(hi, pt.V)
					}
				}
			}
			if p.Ref > 0 {
				lo, hi = min(lo, p.Ref), max(hi, p.Ref*2)
			}
			dlo, dhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
			y = func(v float64) float64 {
				v = max(v, math.Pow(10, dlo))
				return y0 + panelH - (math.Log10(v)-dlo)/(dhi-dlo)*panelH
			}
			for d := dlo; d <= dhi; d++ {
				ticks = append(ticks, math.Pow(10, d))
			}
		} else {
			yMax := 1.0
			for _, l := range p.Lines {
				for _, pt := range l.Points {
					yMax = max(yMax, pt.V)
				}
			}
			if p.Ref > 0 {
				yMax = max(yMax, p.Ref*1.2)
			}
			yMax *= 1.1
			y = func(v float64) float64 { return y0 + panelH - v/yMax*panelH }
			ticks = []float64{0, yMax / 2, yMax}
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-6, html.EscapeString(p.Title))
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", left, y0, w-left-right, panelH)
		for _, v := range ticks {
			fmt.Fprintf(&b, `<text x="%d" y="%.0f" text-anchor="end" fill="#555">%s</text>`+"\n", left-6, y(v)+4, tick(v))
		}
		for t := 0.0; t <= tMax; t += timeStep(tMax) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#777" font-size="10">%.0f</text>`+"\n", x(t), y0+panelH+12, t)
		}
		for _, t := range marks {
			if t < 0 || t > tMax {
				continue
			}
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#ff7f0e" stroke-dasharray="3,3"/>`+"\n", x(t), x(t), y0, y0+panelH)
		}
		if p.Ref > 0 {
			fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="6,4"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
				left, w-right, y(p.Ref), y(p.Ref), w-right-4, y(p.Ref)-4, html.EscapeString(p.RefLabel))
		}
		for j, l := range p.Lines {
			var pts []string
			for _, pt := range l.Points {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(pt.T), y(pt.V)))
			}
			dash := ""
			if l.Dashed {
				dash = ` stroke-dasharray="6,3"`
			}
			width := l.Width
			if width == 0 {
				width = 2
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="%g"%s points="%s"/>`+"\n", l.Color, width, dash, strings.Join(pts, " "))
			fmt.Fprintf(&b, `<text x="%d" y="%.0f" fill="%s">%s</text>`+"\n", w-right-75*len(p.Lines)+j*75, y0-6, l.Color, html.EscapeString(l.Name))
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", left, h-8, html.EscapeString(footer))
	b.WriteString("</svg>\n")
	return b.String()
}

// timeStep is the spacing of the time axis's labels: about ten of them.
func timeStep(tMax float64) float64 {
	for _, s := range []float64{5, 10, 15, 30, 60, 120, 300, 600} {
		if tMax/s <= 12 {
			return s
		}
	}
	return 1200
}

func tick(v float64) string {
	if v >= 1 || v == 0 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%g", v)
}

// DashboardPanels are the Grafana dashboard's panels (config/grafana,
// the same titles) that the demo's samples can draw: p99 against the
// objective, load, errors and refusals, the settings, the database's
// connections against the budget, and the cache hit ratio. The pool's
// acquire wait, requests in flight and the queue are scraped from the
// pods by Prometheus, which the demo does not run.
func DashboardPanels(rows []WindowRow, objective time.Duration, budget int32) []Panel {
	line := func(name, color string, v func(WindowRow) float64) Line {
		l := Line{Name: name, Color: color}
		for _, r := range rows {
			l.Points = append(l.Points, Point{r.Seconds, v(r)})
		}
		return l
	}
	window := func(r WindowRow) float64 {
		if r.OfferedRPS <= 0 {
			return 1
		}
		return float64(r.Requests) / r.OfferedRPS // seconds
	}
	perSecond := func(n func(WindowRow) int) func(WindowRow) float64 {
		return func(r WindowRow) float64 { return float64(n(r)) / window(r) }
	}
	conns := Panel{Title: "Database connections against the budget", Lines: []Line{
		line("open (pg_stat_activity)", "#1f77b4", func(r WindowRow) float64 { return float64(r.PGConns) }),
		line("pools (Σ over pods)", "#aec7e8", func(r WindowRow) float64 { return float64(r.PoolTotal) }),
	}}
	if budget > 0 {
		conns.Ref, conns.RefLabel = float64(budget), fmt.Sprintf("budget %d", budget)
	}
	return []Panel{
		{Title: "p99 latency against the objective (ms, log scale)", Ref: ms(objective), RefLabel: "objective " + objective.String(), Log: true,
			Lines: []Line{line("p99", "#d62728", func(r WindowRow) float64 { return r.P99Ms })}},
		{Title: "Load (requests/s)", Lines: []Line{
			line("offered", "#7f7f7f", func(r WindowRow) float64 { return r.OfferedRPS }),
			line("served", "#1f77b4", func(r WindowRow) float64 { return r.ServedRPS })}},
		{Title: "Errors and refusals (requests/s)", Lines: []Line{
			line("5xx", "#d62728", perSecond(func(r WindowRow) int { return r.R5xx })),
			line("shed (503)", "#ff7f0e", perSecond(func(r WindowRow) int { return r.R503 })),
			line("429", "#9467bd", perSecond(func(r WindowRow) int { return r.R429 })),
			line("network", "#8c564b", perSecond(func(r WindowRow) int { return r.NetErrors }))}},
		{Title: "Settings", Lines: []Line{
			line("replicas", "#2ca02c", func(r WindowRow) float64 { return float64(r.Replicas) }),
			line("maxInFlight", "#9467bd", func(r WindowRow) float64 { return float64(r.Workers) }),
			line("poolMaxConns", "#17becf", func(r WindowRow) float64 { return float64(r.Pool) })}},
		conns,
		{Title: "Cache hit ratio (%)", Lines: []Line{line("hit ratio", "#bcbd22", func(r WindowRow) float64 { return float64(max(r.CacheHit, 0)) })}},
	}
}

// DashboardChart draws DashboardPanels, with the tuner's applied changes
// marked as the dashboard's annotations are.
func DashboardChart(rows []WindowRow, decisions []pacerv1.Decision, start time.Time, objective time.Duration, budget int32) string {
	var marks []float64
	for _, d := range decisions {
		if d.Applied {
			marks = append(marks, d.Time.Sub(start).Seconds())
		}
	}
	return DrawChart("Pacer dashboard, drawn from the demo's samples",
		"time (s); dashed orange lines: settings applied by the tuner (the dashboard's annotations)", DashboardPanels(rows, objective, budget), marks)
}
