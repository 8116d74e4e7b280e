package scenario

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

var t0 = time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestPodSeconds(t *testing.T) {
	samples := []Sample{{At: at(0), Pods: 1}, {At: at(1), Pods: 1}, {At: at(2), Pods: 2}, {At: at(3), Pods: 2}, {At: at(4), Pods: 3}}
	for _, tc := range []struct {
		name     string
		from, to float64
		want     float64
	}{
		// Each sample's count holds until the next one; the last has no end.
		{"whole", 0, 10, 1 + 1 + 2 + 2},
		{"clipped at both ends", 0.5, 3.5, 0.5*1 + 1*1 + 1*2 + 0.5*2},
		{"before the samples", -5, 0, 0},
	} {
		if got := PodSeconds(samples, at(tc.from), at(tc.to)); got != tc.want {
			t.Errorf("%s: PodSeconds = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestViolatingWindows(t *testing.T) {
	objective := 25 * time.Millisecond
	rows := []WindowRow{
		{Requests: 1000, ServedRPS: 200, P99Ms: 12},            // in
		{Requests: 1000, ServedRPS: 200, P99Ms: 25},            // in: at the objective
		{Requests: 1000, ServedRPS: 200, P99Ms: 25.1},          // out: slow
		{Requests: 1000, ServedRPS: 196, P99Ms: 3, Errors: 20}, // out: fast, but 2% failed
		{Requests: 1000, ServedRPS: 199, P99Ms: 3, Errors: 10}, // in: 1% failed is the p99's slack
		{Requests: 500, ServedRPS: 0, P99Ms: 0, Errors: 500},   // out: nothing served
		{Requests: 0, ServedRPS: 0, P99Ms: 0},                  // no load: not a window
	}
	windows, violating := CountWindows(rows, objective)
	if windows != 6 || violating != 3 {
		t.Errorf("CountWindows = %d windows, %d violating; want 6, 3", windows, violating)
	}
	sum := Summarize(rows, nil, nil, nil, objective, 24)
	if sum.ViolatingWindows != 3 || sum.WindowsInObjectivePct != 50 {
		t.Errorf("Summarize: %d violating, %.1f%% in objective; want 3, 50%%", sum.ViolatingWindows, sum.WindowsInObjectivePct)
	}
}

func rescale(name string, when float64, count int32, msg string) corev1.Event {
	return corev1.Event{
		InvolvedObject: corev1.ObjectReference{Kind: "HorizontalPodAutoscaler", Name: name, UID: "this"},
		Reason:         "SuccessfulRescale", Message: msg, Count: count,
		LastTimestamp: metav1.NewTime(at(when)),
	}
}

func TestHPAChanges(t *testing.T) {
	events := []corev1.Event{
		// Out of order, as a list returns them.
		rescale("hpa", 95, 1, "New size: 2; reason: All metrics below target"),
		rescale("hpa", 40, 1, "New size: 2; reason: cpu resource utilization (percentage of request) above target"),
		rescale("hpa", 70, 2, "New size: 3; reason: cpu resource utilization (percentage of request) above target"),
		// Not rescales of this HPA.
		rescale("other", 50, 1, "New size: 4; reason: cpu resource utilization (percentage of request) above target"),
		{InvolvedObject: corev1.ObjectReference{Kind: "HorizontalPodAutoscaler", Name: "hpa"}, Reason: "FailedGetResourceMetric",
			Message: "failed to get cpu utilization", LastTimestamp: metav1.NewTime(at(10))},
		rescale("hpa", 80, 1, "something else entirely"),
	}
	// The HPA of a repetition before, under the same name: its Events stay
	// in the namespace.
	earlier := rescale("hpa", -500, 1, "New size: 4; reason: cpu resource utilization (percentage of request) above target")
	earlier.InvolvedObject.UID = "earlier"
	events = append(events, earlier)
	got := HPAChanges(events, "hpa", "this", 1, t0)
	want := []Change{
		{Seconds: 40, Setting: "replicas", From: 1, To: 2, Reason: "cpu resource utilization (percentage of request) above target"},
		{Seconds: 70, Setting: "replicas", From: 2, To: 3, Reason: "cpu resource utilization (percentage of request) above target", Count: 2},
		{Seconds: 95, Setting: "replicas", From: 3, To: 2, Reason: "All metrics below target"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("HPAChanges (-want +got):\n%s", d)
	}
}

func TestMetricsVerdict(t *testing.T) {
	noMetrics := &HPASample{Active: "False", ActiveReason: "FailedGetResourceMetric", ActiveMessage: "the server could not find the requested resource (get pods.metrics.k8s.io)"}
	if got, want := MetricsVerdict([]Sample{{}, {HPA: noMetrics}, {HPA: noMetrics}}),
		"not available: FailedGetResourceMetric: the server could not find the requested resource (get pods.metrics.k8s.io)"; got != want {
		t.Errorf("without metrics: %q, want %q", got, want)
	}
	if got := MetricsVerdict(nil); got != "not available: the HPA reported no status" {
		t.Errorf("no samples: %q", got)
	}
	withCPU := &HPASample{Active: "True", ActiveReason: "ValidMetricFound", CPUUtilization: ptr.To[int32](83)}
	if got := MetricsVerdict([]Sample{{HPA: noMetrics}, {HPA: withCPU}}); got != "available" {
		t.Errorf("with a CPU reading: %q, want available", got)
	}
}

func TestHPASampleFromStatus(t *testing.T) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{Status: autoscalingv2.HorizontalPodAutoscalerStatus{
		CurrentReplicas: 2, DesiredReplicas: 3,
		CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
			Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: ptr.To[int32](104)},
		}}},
		Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{
			{Type: autoscalingv2.AbleToScale, Status: corev1.ConditionTrue, Reason: "SucceededRescale"},
			{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionTrue, Reason: "ValidMetricFound", Message: "ok"},
		},
	}}
	want := &HPASample{CurrentReplicas: 2, DesiredReplicas: 3, CPUUtilization: ptr.To[int32](104), Active: "True", ActiveReason: "ValidMetricFound", ActiveMessage: "ok"}
	if d := cmp.Diff(want, hpaSample(hpa)); d != "" {
		t.Errorf("hpaSample (-want +got):\n%s", d)
	}
}

func TestHPATargetsTheScaleSubresourceWithPacersTargetAndBounds(t *testing.T) {
	base, err := TunedService("default")
	if err != nil {
		t.Fatal(err)
	}
	ts := Variant(base, RunHPA)
	hpa, err := HPA(ts)
	if err != nil {
		t.Fatal(err)
	}
	ref := hpa.Spec.ScaleTargetRef
	if ref.APIVersion != "tuning.pacer.dev/v1alpha1" || ref.Kind != "TunedService" || ref.Name != ts.Name {
		t.Errorf("scaleTargetRef = %+v, want the TunedService %s", ref, ts.Name)
	}
	b := ts.Spec.Tuning.Bounds.Replicas
	if *hpa.Spec.MinReplicas != b.Min || hpa.Spec.MaxReplicas != b.Max {
		t.Errorf("replicas %d–%d, want the tuner's bounds %d–%d", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, b.Min, b.Max)
	}
	m := hpa.Spec.Metrics
	if len(m) != 1 || m[0].Resource == nil || m[0].Resource.Name != corev1.ResourceCPU ||
		*m[0].Resource.Target.AverageUtilization != *ts.Spec.Tuning.Objective.TargetUtilization {
		t.Errorf("metrics = %+v, want CPU at the tuner's %d%% target", m, *ts.Spec.Tuning.Objective.TargetUtilization)
	}
	if got, want := *hpa.Spec.Behavior.ScaleDown.StabilizationWindowSeconds, int32(ts.Spec.Tuning.Stabilization.ScaleDown.Seconds()); got != want {
		t.Errorf("scale-down stabilization %ds, want the tuner's %ds", got, want)
	}
	noBounds := ts.DeepCopy()
	noBounds.Spec.Tuning.Bounds.Replicas = nil
	if _, err := HPA(noBounds); err == nil {
		t.Error("an HPA without replica bounds: no error")
	}
}

func TestVariants(t *testing.T) {
	base, err := TunedService("default")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		run           string
		mode          pacerv1.TuningMode
		workers, pool int32
	}{
		{RunStatic, pacerv1.TuningDisabled, base.Spec.Workers.MaxInFlight, base.Spec.Database.Pool.MaxConns},
		{RunHPA, pacerv1.TuningDisabled, hpaWorkers, hpaPool},
		{RunPacer, pacerv1.TuningAuto, base.Spec.Workers.MaxInFlight, base.Spec.Database.Pool.MaxConns},
	} {
		ts := Variant(base, tc.run)
		if ts.Name != tc.run || ts.Spec.Tuning.Mode != tc.mode || ts.Spec.Database.URLSecretRef.Name != tc.run+"-db" {
			t.Errorf("%s: name %s, mode %s, secret %s", tc.run, ts.Name, ts.Spec.Tuning.Mode, ts.Spec.Database.URLSecretRef.Name)
		}
		if ts.Spec.Workers.MaxInFlight != tc.workers || ts.Spec.Database.Pool.MaxConns != tc.pool || *ts.Spec.Replicas != *base.Spec.Replicas {
			t.Errorf("%s: %d replicas, %d workers, pool %d; want %d, %d, %d", tc.run, *ts.Spec.Replicas,
				ts.Spec.Workers.MaxInFlight, ts.Spec.Database.Pool.MaxConns, *base.Spec.Replicas, tc.workers, tc.pool)
		}
		// The API server's rule: the most pods the bounds allow, at this pool, fit the budget.
		if b := ts.Spec.Tuning.Bounds.Replicas.Max * ts.Spec.Database.Pool.MaxConns; b > *ts.Spec.Database.MaxTotalConnections {
			t.Errorf("%s: %d pods × pool %d = %d connections, over the budget %d", tc.run, ts.Spec.Tuning.Bounds.Replicas.Max,
				ts.Spec.Database.Pool.MaxConns, b, *ts.Spec.Database.MaxTotalConnections)
		}
	}
	if base.Name != "demo" || base.Spec.Workers.MaxInFlight != 4 {
		t.Errorf("Variant changed the base: name %s, workers %d", base.Name, base.Spec.Workers.MaxInFlight)
	}
}

func TestCompareJSON(t *testing.T) {
	objective := 25 * time.Millisecond
	rec := &RunRecord{
		Start:  t0,
		Phases: []Phase{{Name: "steady", Duration: 10 * time.Second, RPS: 100}},
		Rows: []WindowRow{
			{Seconds: 5, Requests: 500, ServedRPS: 100, P99Ms: 10},
			{Seconds: 10, Requests: 500, ServedRPS: 90, P99Ms: 80, Errors: 50},
		},
		Bins:    []Bin{{Offered: 500, OK: 500}, {Offered: 500, OK: 450, R503: 30, Dropped: 20}},
		Samples: []Sample{{At: at(0), Pods: 1, PGConns: 2, PoolTotal: 2}, {At: at(5), Pods: 2, PGConns: 4, PoolTotal: 4}, {At: at(10), Pods: 2, PGConns: 3, PoolTotal: 4}},
	}
	changes := []Change{{Seconds: 4, Setting: "replicas", From: 1, To: 2, Reason: "cpu above target", Count: 2}}
	c := Comparison{Runs: map[string]CompareRun{
		RunHPA:    CompareRunOf("hpa", rec, changes, objective, 24),
		RunStatic: CompareRunOf("static", rec, nil, objective, 24),
	}}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Runs map[string]map[string]any `json:"runs"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	hpa := got.Runs["hpa"]
	for key, want := range map[string]any{
		"windowsInObjectivePct": 50.0, "violatingWindows": 1.0, "requests": 1000.0,
		"errors":          map[string]any{"total": 50.0, "429": 0.0, "503": 30.0, "5xx": 0.0, "network": 20.0},
		"podSeconds":      1*5 + 2*5.0,
		"peakConnections": 4.0, "connectionBudget": 24.0,
		"changes":      2.0, // one Event that happened twice
		"peakReplicas": 2.0,
	} {
		if d := cmp.Diff(want, hpa[key]); d != "" {
			t.Errorf("runs.hpa.%s (-want +got):\n%s", key, d)
		}
	}
	if log, ok := got.Runs["static"]["changeLog"].([]any); !ok || len(log) != 0 {
		t.Errorf("runs.static.changeLog = %v, want an empty list", got.Runs["static"]["changeLog"])
	}
}

func TestTunerChangesCountOnlyAppliedOnes(t *testing.T) {
	decisions := []pacerv1.Decision{
		{Time: metav1.NewTime(at(12)), Applied: true, Changes: []pacerv1.Change{{Setting: "replicas", From: 1, To: 2, Reason: "busy"}, {Setting: "maxInFlight", From: 4, To: 8, Reason: "queue"}}},
		{Time: metav1.NewTime(at(30)), Applied: false, Changes: []pacerv1.Change{{Setting: "replicas", From: 2, To: 3, Reason: "recommended only"}}},
	}
	got := TunerChanges(decisions, t0)
	want := []Change{
		{Seconds: 12, Setting: "replicas", From: 1, To: 2, Reason: "busy"},
		{Seconds: 12, Setting: "maxInFlight", From: 4, To: 8, Reason: "queue"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("TunerChanges (-want +got):\n%s", d)
	}
}

func TestComparePanels(t *testing.T) {
	runs := map[string][]WindowRow{
		RunStatic: {{Seconds: 5, OfferedRPS: 240, ServedRPS: 240, P99Ms: 4, ReadyPods: 1, PoolTotal: 2}, {Seconds: 10, OfferedRPS: 480, ServedRPS: 400, P99Ms: 120, ReadyPods: 1, PoolTotal: 2}},
		RunPacer:  {{Seconds: 5, OfferedRPS: 240, ServedRPS: 240, P99Ms: 5, ReadyPods: 1, PoolTotal: 2}, {Seconds: 10, OfferedRPS: 480, ServedRPS: 480, P99Ms: 20, ReadyPods: 2, PoolTotal: 8}},
	}
	panels := ComparePanels(runs, 25*time.Millisecond, 24)
	if len(panels) != 4 {
		t.Fatalf("%d panels, want 4", len(panels))
	}
	names := func(p Panel) (out []string) {
		for _, l := range p.Lines {
			out = append(out, l.Name)
		}
		return out
	}
	// Runs in their order, missing ones left out; the offered load once.
	for i, want := range [][]string{{"static", "pacer"}, {"offered", "static", "pacer"}, {"static", "pacer"}, {"static", "pacer"}} {
		if d := cmp.Diff(want, names(panels[i])); d != "" {
			t.Errorf("panel %q lines (-want +got):\n%s", panels[i].Title, d)
		}
	}
	if !panels[0].Log || panels[0].Ref != 25 || panels[3].Ref != 24 {
		t.Errorf("p99 panel log=%t ref=%v, connections ref=%v; want log, 25ms, budget 24", panels[0].Log, panels[0].Ref, panels[3].Ref)
	}
	for _, c := range []struct {
		panel, line int
		want        []Point
	}{
		{0, 0, []Point{{5, 4}, {10, 120}}},   // static p99
		{1, 0, []Point{{5, 240}, {10, 480}}}, // offered
		{1, 2, []Point{{5, 240}, {10, 480}}}, // pacer served
		{2, 1, []Point{{5, 1}, {10, 2}}},     // pacer ready pods
		{3, 1, []Point{{5, 2}, {10, 8}}},     // pacer Σ pools
	} {
		if d := cmp.Diff(c.want, panels[c.panel].Lines[c.line].Points); d != "" {
			t.Errorf("panel %d line %d (-want +got):\n%s", c.panel, c.line, d)
		}
	}
	svg := CompareChart(runs, 25*time.Millisecond, 24)
	for _, s := range []string{"objective 25ms", "budget 24", ">static<", ">pacer<"} {
		if !strings.Contains(svg, s) {
			t.Errorf("chart lacks %q", s)
		}
	}
}

func TestSameSeedSameRequests(t *testing.T) {
	ids := []int64{11, 12, 13, 14, 15, 16, 17, 18}
	draw := func(seed uint64) []request {
		m := newMix(seed, ids)
		var out []request
		for range 200 {
			out = append(out, m.next(0.1))
		}
		return out
	}
	a, b, c := draw(1), draw(1), draw(2)
	if d := cmp.Diff(a, b, cmp.AllowUnexported(request{})); d != "" {
		t.Errorf("same seed, different requests:\n%s", d)
	}
	if cmp.Equal(a, c, cmp.AllowUnexported(request{})) {
		t.Error("different seeds, same requests")
	}
	creates := 0
	for _, r := range a {
		if r.create {
			creates++
		}
	}
	if creates < 5 || creates > 40 {
		t.Errorf("%d creates of 200 at a 10%% share", creates)
	}
}

// DEMO_INTERVAL reaches every run's TunedService and Pacer's setup line;
// unset, the scenario's 10 s stays.
func TestWithInterval(t *testing.T) {
	base, err := TunedService("default")
	if err != nil {
		t.Fatal(err)
	}
	if got := WithInterval(base, 0).Spec.Tuning.Interval.Duration; got != 10*time.Second {
		t.Fatalf("interval %s with DEMO_INTERVAL unset, want the scenario's 10s", got)
	}
	WithInterval(base, 30*time.Second)
	for _, run := range CompareRuns {
		if got := Variant(base, run).Spec.Tuning.Interval.Duration; got != 30*time.Second {
			t.Errorf("%s: interval %s, want 30s", run, got)
		}
	}
	if s := Setup(Variant(base, RunPacer), RunPacer); !strings.Contains(s, "every 30s") {
		t.Errorf("pacer's setup %q does not say the interval", s)
	}
}
