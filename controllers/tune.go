package controllers

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/metrics"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

const defaultInterval = 30 * time.Second

// loops keeps each TunedService's tuner loop, and when it last observed,
// in memory. A loop lost on restart is seeded again from status
// (status.effective and status.history): only the recent windows are
// lost, which makes the tuner wait until they refill.
type loops struct {
	mu   sync.Mutex
	byTS map[types.NamespacedName]*loopEntry
}

type loopEntry struct {
	loop     *tuning.Loop
	observed time.Time
}

func (l *loops) get(ts *pacerv1.TunedService) *loopEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := client.ObjectKeyFromObject(ts)
	e := l.byTS[key]
	if e == nil {
		if l.byTS == nil {
			l.byTS = map[types.NamespacedName]*loopEntry{}
		}
		e = &loopEntry{loop: tuning.NewLoop(tuning.Seed{Effective: ts.Status.Effective, History: ts.Status.History})}
		if o := ts.Status.LastObservation; o != nil {
			e.observed = o.Time.Time // a new manager: go by status
		}
		l.byTS[key] = e
	}
	return e
}

func (l *loops) forget(key types.NamespacedName) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.byTS, key)
}

// loopSpec is what the tuner loop reads from the spec, and what else this
// pass found: the connection budget in effect (the spec's, or a
// ConnectionBudget's allocation), and whether an HPA owns the replicas
// (then they are not tuned: they follow spec.replicas, which it writes).
func loopSpec(s *scope) tuning.Spec {
	ts := s.ts
	spec := tuning.Spec{
		Tuning:              ts.Spec.Tuning,
		Settings:            render.SpecSettings(&ts.Spec),
		MaxTotalConnections: connectionLimit(ts, s.allocation),
		PodCPULimit:         podCPULimit(ts),
	}
	if s.handsReplicasToHPA() {
		spec.Tuning.Bounds.Replicas = nil
	}
	return spec
}

// syncSettings sets the settings this pass renders: the loop's, with any
// user edit taken at once.
func (r *TunedServiceReconciler) syncSettings(s *scope) {
	l := r.loops.get(s.ts).loop
	settings, edits := l.Sync(r.now(), loopSpec(s))
	s.settings = settings
	if len(edits) > 0 {
		s.ts.Status.History = l.History()
		for _, c := range edits {
			r.Recorder.Eventf(s.ts, nil, corev1.EventTypeNormal, "SpecOverride", "Tune", "%s %d → %d: %s", c.Setting, c.From, c.To, c.Reason)
		}
	}
}

// reconcileTuning hands the TunedService's loop, which decides, the latest
// window its observer finished, and makes the loop's settings the ones the
// following steps render. The observation itself runs on the observer's
// own goroutine (observeService below), never here: a hung pod delays no pass.
// Hold, and Disabled on its way back to the spec, observe nothing and step
// once per interval.
func (r *TunedServiceReconciler) reconcileTuning(ctx context.Context, s *scope) error {
	defer r.recoverObservation(s)
	ts := s.ts
	key := client.ObjectKeyFromObject(ts)
	spec := loopSpec(s)
	mode := tuning.ModeOf(ts.Spec.Tuning.Mode)
	e := r.loops.get(ts)
	interval := tuningInterval(ts)
	if !observes(mode) {
		r.observers.Stop(key)
	}
	if mode == pacerv1.TuningDisabled && e.loop.AtSpec(spec) {
		r.Metrics.Forget(key.Namespace, key.Name)
		forgetGauges(key)
		return nil
	}

	tick := tuning.Tick{Now: r.now(), Spec: spec}
	var observedAt time.Time
	if observes(mode) {
		r.observers.Ensure(key, observePeriod(ts))
		done, ok := r.observers.Take(key)
		if !ok {
			s.tuned = previousTuned(ts) // the observer queues a pass when it has a window
			return nil
		}
		tick.Window, tick.NoWindow = done.Value.window, done.Value.noWindow
		observedAt = done.End
	} else {
		if wait := interval - tick.Now.Sub(e.observed); !e.observed.IsZero() && wait > 0 {
			s.requeueAfter = wait
			s.tuned = previousTuned(ts)
			return nil
		}
		s.requeueAfter = interval
	}
	terminating, err := r.terminatingPods(ctx, ts)
	if err != nil {
		return err
	}
	tick.Terminating = terminating
	e.observed = tick.Now
	res := e.loop.Step(tick)
	if w := tick.Window; w != nil {
		r.recordObservation(ts, *w, observedAt, res.Judged)
	}
	r.record(s, e.loop, res)
	return nil
}

// observes reports whether a mode observes the pods.
func observes(mode pacerv1.TuningMode) bool {
	return mode == pacerv1.TuningAuto || mode == pacerv1.TuningRecommend
}

// observePeriod is how often a TunedService's pods are observed: within
// the tuner's panic horizon when the operator scrapes them; once per
// interval from Prometheus, whose rates cannot move faster than its own
// scrape interval.
func observePeriod(ts *pacerv1.TunedService) time.Duration {
	if ts.Spec.Tuning.Metrics.Source == pacerv1.MetricsFromPrometheus {
		return tuningInterval(ts)
	}
	return tuning.ObservePeriod(tuningInterval(ts))
}

func tuningInterval(ts *pacerv1.TunedService) time.Duration {
	return ptr.Deref(ts.Spec.Tuning.Interval, metav1.Duration{Duration: defaultInterval}).Duration
}

// observed is one finished observation: a window, or why there is none.
type observed struct {
	window   *tuning.Window
	noWindow tuning.Condition
}

// observeService makes one observation of a TunedService, on its observer's
// goroutine: everything it needs (spec, the generation in effect, the
// ready pods) is read from the manager's cache as it is now.
func (r *TunedServiceReconciler) observeService(ctx context.Context, key types.NamespacedName) observed {
	ts := &pacerv1.TunedService{}
	if err := r.Client.Get(ctx, key, ts); err != nil {
		return observed{noWindow: observationFailed(fmt.Sprintf("read the TunedService: %s", apierrors.ReasonForError(err)))}
	}
	win, cond := r.observeWindow(ctx, ts, observePeriod(ts))
	return observed{window: win, noWindow: cond}
}

// observeWindow reads one window of the pods' metrics, over about period;
// a window that cannot be made comes back nil with the Tuned condition
// that says why.
func (r *TunedServiceReconciler) observeWindow(ctx context.Context, ts *pacerv1.TunedService, period time.Duration) (*tuning.Window, tuning.Condition) {
	source, err := r.metricsSource(ctx, ts)
	if err != nil {
		return nil, tuning.Condition{Status: metav1.ConditionUnknown, Reason: "MetricsUnavailable", Message: redactURL(err.Error(), ts)}
	}
	pods, err := r.readyPods(ctx, ts)
	if err != nil {
		return nil, observationFailed(err.Error())
	}
	// No request minimum: a quiet window is low demand, which the loop
	// acts on; it does not trust such a window's quantiles.
	win, err := source.Observe(ctx, metrics.Target{
		Namespace:  ts.Namespace,
		Name:       ts.Name,
		Pods:       pods,
		Generation: generationInEffect(ts),
		Interval:   period,
	})
	if err != nil {
		return nil, observationFailed(redactURL(err.Error(), ts))
	}
	return &win, tuning.Condition{}
}

func observationFailed(msg string) tuning.Condition {
	return tuning.Condition{Status: metav1.ConditionUnknown, Reason: "ObservationFailed", Message: msg}
}

// recordObservation lands a window in the operator's gauges and, when the
// loop judged it, in status: the windows between two decisions only feed
// the model, so status is written once per interval, not per window.
func (r *TunedServiceReconciler) recordObservation(ts *pacerv1.TunedService, win tuning.Window, at time.Time, judged bool) {
	// An unchanged observation (an idle service's "no ready pods") is not
	// written again: a service nobody uses costs no API writes.
	if obs := observation(win, at); judged && !sameObservation(ts.Status.LastObservation, obs) {
		ts.Status.LastObservation = obs
	}
	objective := ptr.Deref(ts.Spec.Tuning.Objective.LatencyP99, metav1.Duration{Duration: 100 * time.Millisecond}).Duration
	setObservationGauges(ts, win, objective)
}

// record lands a step's result in status, Events and metrics, and makes
// its settings the ones this pass renders.
func (r *TunedServiceReconciler) record(s *scope, l *tuning.Loop, res tuning.Result) {
	ts := s.ts
	s.settings = res.Settings
	ts.Status.History = l.History()
	// The same advice again keeps the time it was first given: an idle
	// service's status is not rewritten every interval.
	if rec := res.Recommendation; rec != nil && !sameRecommendation(ts.Status.Recommendation, rec) {
		ts.Status.Recommendation = rec
	}
	if d := res.Decision; d != nil {
		reason := "Recommended"
		if d.Applied {
			reason = "Tuned"
		}
		for _, c := range d.Changes {
			r.Recorder.Eventf(ts, nil, corev1.EventTypeNormal, reason, "Tune", "%s %d → %d: %s", c.Setting, c.From, c.To, c.Reason)
			if d.Applied {
				countDecision(ts, c)
			}
		}
	}
	c := res.Condition
	s.tuned = &metav1.Condition{Status: c.Status, Reason: c.Reason, Message: c.Message}
}

// redactURL hides any password in spec.tuning.metrics.prometheusURL from a
// message bound for status, where everyone who may read the object sees it.
func redactURL(msg string, ts *pacerv1.TunedService) string {
	raw := ts.Spec.Tuning.Metrics.PrometheusURL
	u, err := url.Parse(raw)
	if raw == "" || err != nil || u.User == nil {
		return msg
	}
	return strings.ReplaceAll(msg, raw, u.Redacted())
}

// generationInEffect is the config generation last rendered: the one the
// pods should be running while they are observed.
func generationInEffect(ts *pacerv1.TunedService) int64 {
	if e := ts.Status.Effective; e != nil {
		return e.ConfigGeneration
	}
	return 0
}

// previousTuned keeps the Tuned condition as it was between observations.
func previousTuned(ts *pacerv1.TunedService) *metav1.Condition {
	for _, c := range ts.Status.Conditions {
		if c.Type == pacerv1.ConditionTuned {
			c := c
			return &c
		}
	}
	return nil
}

func (r *TunedServiceReconciler) forgetTuning(key types.NamespacedName) {
	r.observers.Stop(key)
	r.loops.forget(key)
	r.Metrics.Forget(key.Namespace, key.Name)
	forgetGauges(key)
}

// readyPods lists the TunedService's ready pods with their addresses.
func (r *TunedServiceReconciler) readyPods(ctx context.Context, ts *pacerv1.TunedService) ([]metrics.Pod, error) {
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(ts.Namespace),
		client.MatchingLabels(render.SelectorLabels(ts))); err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var pods []metrics.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil || p.Status.PodIP == "" || !podReady(&p) {
			continue
		}
		pods = append(pods, metrics.Pod{Name: p.Name, UID: string(p.UID), Host: p.Status.PodIP, Port: render.AdminPort})
	}
	return pods, nil
}

// terminatingPods counts the TunedService's pods being deleted: until they
// are gone they keep their database connections, which the connection
// budget must count.
func (r *TunedServiceReconciler) terminatingPods(ctx context.Context, ts *pacerv1.TunedService) (int32, error) {
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(ts.Namespace),
		client.MatchingLabels(render.SelectorLabels(ts))); err != nil {
		return 0, fmt.Errorf("list pods: %w", err)
	}
	var n int32
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil {
			n++
		}
	}
	return n, nil
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podCPULimit is a pod's CPU limit in cores; 0 when it has none. A
// request is no ceiling (a pod may use more), so it is not capacity.
func podCPULimit(ts *pacerv1.TunedService) float64 {
	if r := ts.Spec.Resources; r != nil {
		if q, ok := r.Limits[corev1.ResourceCPU]; ok {
			return q.AsApproximateFloat64()
		}
	}
	return 0
}

// observation turns a window into the status summary users read.
func observation(w tuning.Window, now time.Time) *pacerv1.Observation {
	o := &pacerv1.Observation{
		Time:        metav1.NewTime(now),
		Window:      metav1.Duration{Duration: w.End.Sub(w.Start).Round(time.Second)},
		Pods:        int32(w.Pods),
		RequestRate: rate(w.RequestRate),
		Sufficient:  w.Sufficient,
		Reason:      w.Reason,
	}
	if w.Start.IsZero() {
		o.Window = metav1.Duration{}
	}
	if w.RequestRate > 0 || w.Sufficient {
		o.ErrorRate = ptr.To(rate(w.ErrorRate))
		o.RejectedRate = ptr.To(rate(w.ShedRate + w.RateLimitedRate))
		if w.P99 > 0 { // an empty latency histogram is no latency of 0
			o.LatencyP50 = latency(w.P50)
			o.LatencyP95 = latency(w.P95)
			o.LatencyP99 = latency(w.P99)
		}
		o.WorkerUtilization = ptr.To(int32(w.Utilization*100 + 0.5))
		o.CacheHitRatio = ptr.To(int32(w.CacheHitRatio*100 + 0.5))
		o.PoolAcquireWait = latency(w.PoolAcquireWait)
	}
	return o
}

// sameObservation reports whether two observations differ only in time.
func sameObservation(a, b *pacerv1.Observation) bool {
	if a == nil || b == nil {
		return a == b
	}
	a, b = a.DeepCopy(), b.DeepCopy()
	a.Time, b.Time = metav1.Time{}, metav1.Time{}
	return equality.Semantic.DeepEqual(a, b)
}

// sameRecommendation reports whether two recommendations differ only in time.
func sameRecommendation(a, b *pacerv1.Recommendation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Settings == b.Settings && equality.Semantic.DeepEqual(a.Changes, b.Changes)
}

// rate rounds a per-second rate to 0.1, in the form kubectl shows ("12300m").
func rate(v float64) resource.Quantity {
	return *resource.NewMilliQuantity(int64(v*10+0.5)*100, resource.DecimalSI)
}

// latency rounds to 0.1ms so status stays readable.
func latency(d time.Duration) *metav1.Duration {
	return &metav1.Duration{Duration: d.Round(100 * time.Microsecond)}
}
