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

const (
	defaultInterval = 30 * time.Second
	// minWindowRequests is the fewest requests a window needs before the
	// tuner trusts its quantiles.
	minWindowRequests = 50
	// recentWindows is how many past windows the tuner sees: enough for a
	// 5m stabilization window at a 15s interval.
	recentWindows = 24
)

// windows keeps each TunedService's recent windows, and when it was last
// observed, in memory. They are lost on restart, which only makes the
// tuner more cautious for a while.
type windows struct {
	mu       sync.Mutex
	byTS     map[types.NamespacedName][]tuning.Window
	observed map[types.NamespacedName]time.Time
}

func (w *windows) lastObserved(key types.NamespacedName) time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.observed[key]
}

func (w *windows) markObserved(key types.NamespacedName, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.observed == nil {
		w.observed = map[types.NamespacedName]time.Time{}
	}
	w.observed[key] = at
}

func (w *windows) get(key types.NamespacedName) []tuning.Window {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]tuning.Window(nil), w.byTS[key]...)
}

func (w *windows) push(key types.NamespacedName, win tuning.Window) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byTS == nil {
		w.byTS = map[types.NamespacedName][]tuning.Window{}
	}
	list := append([]tuning.Window{win}, w.byTS[key]...)
	w.byTS[key] = list[:min(len(list), recentWindows)]
}

func (w *windows) forget(key types.NamespacedName) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.byTS, key)
	delete(w.observed, key)
}

// reconcileTuning observes the pods once per interval and decides. In Auto
// mode the decision changes s.settings, which the following steps render;
// in Recommend mode it only lands in status.
func (r *TunedServiceReconciler) reconcileTuning(ctx context.Context, s *scope) error {
	ts := s.ts
	key := client.ObjectKeyFromObject(ts)
	mode := modeOrDefault(ts.Spec.Tuning.Mode)
	if mode == pacerv1.TuningOff {
		r.forgetTuning(key)
		return nil
	}
	interval := ptr.Deref(ts.Spec.Tuning.Interval, metav1.Duration{Duration: defaultInterval}).Duration
	now := r.now()
	last := r.recent.lastObserved(key)
	if o := ts.Status.LastObservation; last.IsZero() && o != nil {
		last = o.Time.Time // a new manager: go by status
	}
	if wait := interval - now.Sub(last); !last.IsZero() && wait > 0 {
		s.requeueAfter = wait
		s.tuned = previousTuned(ts)
		return nil
	}
	s.requeueAfter = interval
	r.recent.markObserved(key, now)

	source, err := r.metricsSource(ctx, ts)
	if err != nil {
		s.tuned = &metav1.Condition{Status: metav1.ConditionUnknown, Reason: "MetricsUnavailable", Message: redactURL(err.Error(), ts)}
		return nil //nolint:nilerr // reported in the Tuned condition; the rest of the pass goes on
	}
	pods, err := r.readyPods(ctx, ts)
	if err != nil {
		return err
	}
	win, err := source.Observe(ctx, metrics.Target{
		Namespace:   ts.Namespace,
		Name:        ts.Name,
		Pods:        pods,
		Generation:  generationInEffect(ts),
		MinRequests: minWindowRequests,
		Interval:    interval,
	})
	if err != nil {
		s.tuned = &metav1.Condition{Status: metav1.ConditionUnknown, Reason: "ObservationFailed", Message: redactURL(err.Error(), ts)}
		return nil //nolint:nilerr // reported in the Tuned condition; the rest of the pass goes on
	}
	now = r.now() // the window ends with the scrapes just made
	// An unchanged observation (an idle service's "no ready pods") is not
	// written again: a service nobody uses costs no API writes.
	if obs := observation(win, now); !sameObservation(ts.Status.LastObservation, obs) {
		ts.Status.LastObservation = obs
	}
	objective := ptr.Deref(ts.Spec.Tuning.Objective.LatencyP99, metav1.Duration{Duration: 100 * time.Millisecond}).Duration
	setObservationGauges(ts, win, objective)
	if !win.Sufficient {
		s.tuned = &metav1.Condition{Status: metav1.ConditionUnknown, Reason: "InsufficientMetrics", Message: win.Reason}
		return nil
	}

	recent := r.recent.get(key)
	r.recent.push(key, win)
	decision := tuning.Decide(tuning.Input{
		Now:                 now,
		Tuning:              ts.Spec.Tuning,
		MaxTotalConnections: ptr.Deref(ts.Spec.Database.MaxTotalConnections, 0),
		Current:             s.settings,
		Window:              win,
		History:             ts.Status.History,
		Recent:              recent,
		PodCPU:              podCPU(ts),
	})
	r.record(s, mode, decision, now)
	return nil
}

// record lands a decision in status, Events and metrics, and in Auto mode
// makes it the settings this pass renders.
func (r *TunedServiceReconciler) record(s *scope, mode pacerv1.TuningMode, d tuning.Decision, now time.Time) {
	ts := s.ts
	changed := len(d.Changes) > 0
	rec := &pacerv1.Recommendation{Time: metav1.NewTime(now), Settings: d.Settings, Changes: d.Changes}

	switch {
	case mode == pacerv1.TuningAuto && changed:
		s.settings = d.Settings
		ts.Status.Recommendation = rec
		addHistory(ts, pacerv1.Decision{Time: rec.Time, Mode: mode, Applied: true, Changes: d.Changes})
		for _, c := range d.Changes {
			r.Recorder.Eventf(ts, nil, corev1.EventTypeNormal, "Tuned", "Tune", "%s %d → %d: %s", c.Setting, c.From, c.To, c.Reason)
			countDecision(c)
		}
		s.tuned = &metav1.Condition{Status: metav1.ConditionTrue, Reason: "Applied", Message: d.Summary}
	case mode == pacerv1.TuningRecommend && changed:
		// Record a recommendation once, not again every interval it stands.
		if prev := ts.Status.Recommendation; prev == nil || prev.Settings != d.Settings {
			addHistory(ts, pacerv1.Decision{Time: rec.Time, Mode: mode, Applied: false, Changes: d.Changes})
			for _, c := range d.Changes {
				r.Recorder.Eventf(ts, nil, corev1.EventTypeNormal, "Recommended", "Tune", "%s %d → %d: %s", c.Setting, c.From, c.To, c.Reason)
			}
		}
		ts.Status.Recommendation = rec
		s.tuned = &metav1.Condition{Status: metav1.ConditionFalse, Reason: "Recommending", Message: d.Summary}
	default:
		ts.Status.Recommendation = rec
		s.tuned = &metav1.Condition{Status: metav1.ConditionTrue, Reason: "Holding", Message: d.Summary}
	}
}

// recordUserEdits notes in history that a user's edit overrode the tuner.
func (r *TunedServiceReconciler) recordUserEdits(s *scope, edits []pacerv1.Change) {
	if len(edits) == 0 || !addHistory(s.ts, pacerv1.Decision{
		Time: metav1.NewTime(r.now()), Mode: modeOrDefault(s.ts.Spec.Tuning.Mode), Applied: true, Changes: edits,
	}) {
		return
	}
	for _, c := range edits {
		r.Recorder.Eventf(s.ts, nil, corev1.EventTypeNormal, "SpecOverride", "Tune", "%s %d → %d: %s", c.Setting, c.From, c.To, c.Reason)
	}
}

// addHistory puts d first in status.history, unless the newest entry is the
// same decision (a pass retried before its result was rendered), and
// reports whether it did.
func addHistory(ts *pacerv1.TunedService, d pacerv1.Decision) bool {
	if h := ts.Status.History; len(h) > 0 {
		last := h[0]
		last.Time = d.Time
		if equality.Semantic.DeepEqual(last, d) {
			return false
		}
	}
	h := append([]pacerv1.Decision{d}, ts.Status.History...)
	ts.Status.History = h[:min(len(h), pacerv1.MaxHistory)]
	return true
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
	r.recent.forget(key)
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

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podCPU is the CPU a pod may use, in cores: its limit, else its request,
// else the default request Pacer renders.
func podCPU(ts *pacerv1.TunedService) float64 {
	if r := ts.Spec.Resources; r != nil {
		if q, ok := r.Limits[corev1.ResourceCPU]; ok {
			return q.AsApproximateFloat64()
		}
		if q, ok := r.Requests[corev1.ResourceCPU]; ok {
			return q.AsApproximateFloat64()
		}
	}
	return render.DefaultCPURequest.AsApproximateFloat64()
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
		o.LatencyP50 = latency(w.P50)
		o.LatencyP95 = latency(w.P95)
		o.LatencyP99 = latency(w.P99)
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

// rate rounds a per-second rate to 0.1, in the form kubectl shows ("12300m").
func rate(v float64) resource.Quantity {
	return *resource.NewMilliQuantity(int64(v*10+0.5)*100, resource.DecimalSI)
}

// latency rounds to 0.1ms so status stays readable.
func latency(d time.Duration) *metav1.Duration {
	return &metav1.Duration{Duration: d.Round(100 * time.Microsecond)}
}
