package sim

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// Pacer is the operator's tuner. The adapter does only what the
// reconciler's I/O does: it hands each window over and applies what comes
// back.
type Pacer struct{}

func (Pacer) Name() string { return "pacer" }

func (Pacer) Start(sc Scenario) (pacerv1.Settings, Controller) {
	return sc.Start, &pacerCtl{sc: sc}
}

// The reconciler's constants (controllers/tune.go) until the loop owns them.
const (
	reconcilerWindows     = 24
	reconcilerMinRequests = 50
)

type pacerCtl struct {
	sc      Scenario
	recent  []tuning.Window
	history []pacerv1.Decision
}

func (p *pacerCtl) Step(s Step) tuning.Decision {
	w := s.Window
	if w == nil {
		return hold(s)
	}
	win := *w
	if win.Sufficient && win.RequestRate*win.End.Sub(win.Start).Seconds() < reconcilerMinRequests {
		win.Sufficient, win.Reason = false, "too few requests"
	}
	if !win.Sufficient {
		return hold(s)
	}
	d := tuning.Decide(tuning.Input{
		Now: s.Now, Tuning: p.sc.Tuning, MaxTotalConnections: p.sc.Budget,
		Current: s.Current, Window: win, History: p.history, Recent: p.recent, PodCPU: p.sc.Model.PodCores,
	})
	p.recent = append([]tuning.Window{win}, p.recent...)
	p.recent = p.recent[:min(len(p.recent), reconcilerWindows)]
	if len(d.Changes) > 0 {
		h := append([]pacerv1.Decision{{Time: metav1.NewTime(s.Now), Mode: pacerv1.TuningAuto, Applied: true, Changes: d.Changes}}, p.history...)
		p.history = h[:min(len(h), pacerv1.MaxHistory)]
	}
	return d
}
