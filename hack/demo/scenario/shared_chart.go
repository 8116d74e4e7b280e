package scenario

import (
	"fmt"
	"html"
	"strings"
)

// Member colours of the shared-budget chart.
var sharedColors = map[string]string{SharedSteady: "#1f77b4", SharedSpiky: "#d62728"}

// Band is one member's layer of a stacked area: its open connections
// over time, from Low (the layers under it) to High.
type Band struct {
	Name, Color  string
	T, Low, High []float64
}

// StackOpen stacks the members' open connections, in the order given,
// sample by sample: the top of the last band is the database's total
// of members' connections.
func StackOpen(samples []SharedSample, members []string) []Band {
	bands := make([]Band, len(members))
	for i, m := range members {
		bands[i] = Band{Name: m, Color: sharedColors[m]}
	}
	for _, s := range samples {
		low := 0.0
		for i, m := range members {
			high := low + float64(s.Open[m])
			bands[i].T = append(bands[i].T, s.Seconds)
			bands[i].Low = append(bands[i].Low, low)
			bands[i].High = append(bands[i].High, high)
			low = high
		}
	}
	return bands
}

// Span is a stretch of time the chart shades (a load phase).
type Span struct {
	From, To float64
	Label    string
}

// SpikeSpans are the spiking member's "spike" phases, in seconds from the
// start of its load.
func SpikeSpans(phases []Phase) []Span {
	var out []Span
	t := 0.0
	for _, p := range phases {
		d := p.Duration.Seconds()
		if p.Name == "spike" {
			out = append(out, Span{From: t, To: t + d, Label: SharedSpiky + "'s spike"})
		}
		t += d
	}
	return out
}

// SharedChart draws the shared-budget run: on top, the members' open
// connections (pg_stat_activity) stacked under the budget's room and its
// maxConnections; below, each member's allocation over time against the
// fair share, so room is seen changing hands. Spans are shaded in both.
func SharedChart(samples []SharedSample, members []string, room, maxConnections int, spans []Span, hpaNote string) string {
	const (
		w, panelH, left, right, top, gap = 960, 220, 70, 20, 48, 56
	)
	tMax, yMax := 1.0, float64(maxConnections)*1.15
	for _, s := range samples {
		tMax = max(tMax, s.Seconds)
		yMax = max(yMax, float64(s.Total)*1.1)
	}
	h := top + 2*(panelH+gap) + 20
	x := func(t float64) float64 { return left + t/tMax*float64(w-left-right) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	title := "Pacer demo-budget: two services, one database, one ConnectionBudget"
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/><text x="%d" y="24" font-size="16">%s</text>`+"\n", w, h, left, html.EscapeString(title))
	panel := func(i int, name string) (y func(float64) float64, y0 float64) {
		y0 = float64(top + i*(panelH+gap) + 20)
		y = func(v float64) float64 { return y0 + panelH - v/yMax*panelH }
		fmt.Fprintf(&b, `<text x="%d" y="%.0f" font-weight="bold">%s</text>`+"\n", left, y0-8, html.EscapeString(name))
		fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="%d" height="%d" fill="none" stroke="#ccc"/>`+"\n", left, y0, w-left-right, panelH)
		for v := 0; float64(v) <= yMax; v += max(int(yMax/6), 1) {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%d</text>`+"\n", left-6, y(float64(v))+4, v)
		}
		for t := 0.0; t <= tMax; t += timeStep(tMax) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle" fill="#777" font-size="10">%.0f</text>`+"\n", x(t), y0+panelH+13, t)
		}
		for _, sp := range spans {
			from, to := x(min(sp.From, tMax)), x(min(sp.To, tMax))
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="%d" fill="#ffbf00" fill-opacity="0.15"/><text x="%.1f" y="%.0f" fill="#a06000" font-size="10">%s</text>`+"\n",
				from, y0, to-from, panelH, from+4, y0+12, html.EscapeString(sp.Label))
		}
		return y, y0
	}
	hline := func(y func(float64) float64, v float64, label, dash string) {
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="%s"/><text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n",
			left, w-right, y(v), y(v), dash, w-right-4, y(v)-4, html.EscapeString(label))
	}
	legend := func(y0 float64) {
		for j, m := range members {
			fmt.Fprintf(&b, `<rect x="%d" y="%.0f" width="10" height="10" fill="%s"/><text x="%d" y="%.0f">%s</text>`+"\n",
				w-right-260+j*90, y0-18, sharedColors[m], w-right-246+j*90, y0-9, html.EscapeString(m))
		}
	}

	y, y0 := panel(0, "open connections (pg_stat_activity, every second), stacked, under the budget")
	for _, band := range StackOpen(samples, members) {
		if len(band.T) == 0 {
			continue
		}
		var pts []string
		for i := range band.T {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(band.T[i]), y(band.High[i])))
		}
		for i := len(band.T) - 1; i >= 0; i-- {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(band.T[i]), y(band.Low[i])))
		}
		fmt.Fprintf(&b, `<polygon fill="%s" fill-opacity="0.55" stroke="%s" stroke-width="1" points="%s"/>`+"\n", band.Color, band.Color, strings.Join(pts, " "))
	}
	hline(y, float64(room), fmt.Sprintf("budget room %d (maxConnections − reserved)", room), "6,4")
	hline(y, float64(maxConnections), fmt.Sprintf("maxConnections %d", maxConnections), "2,3")
	legend(y0)

	y, y0 = panel(1, "allocation per member (ConnectionBudget status)")
	fair := float64(room / max(len(members), 1))
	hline(y, fair, fmt.Sprintf("fair share %d", int(fair)), "6,4")
	hline(y, float64(room), fmt.Sprintf("room %d", room), "2,3")
	for _, m := range members {
		var pts []string
		for _, s := range samples {
			if a, ok := s.Allocated[m]; ok {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(s.Seconds), y(float64(a))))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", sharedColors[m], strings.Join(pts, " "))
	}
	legend(y0)
	footer := "time since the load started (s); each member's pod holds its pool (2) and its health connection (1)"
	if hpaNote != "" {
		footer += "; " + hpaNote
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#555">%s</text>`+"\n", left, h-8, html.EscapeString(footer))
	b.WriteString("</svg>\n")
	return b.String()
}
