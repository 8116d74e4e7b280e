package scenario

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// HPA is the HorizontalPodAutoscaler a user would put on ts: it scales the
// TunedService through its scale subresource (so the reconciler renders the
// replicas the HPA chose, and the two never write the Deployment both), on
// CPU utilization of the pods' request at the tuner's target and within its
// replica bounds. Its scale-down stabilization is the tuner's, so neither
// keeps pods longer by configuration alone; scale-up keeps the HPA default
// (no stabilization, at most double or +4 pods per 15 s).
func HPA(ts *pacerv1.TunedService) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	t := ts.Spec.Tuning
	if t.Bounds.Replicas == nil || t.Objective.TargetUtilization == nil {
		return nil, fmt.Errorf("TunedService %s: an HPA needs tuning.bounds.replicas and tuning.objective.targetUtilization", ts.Name)
	}
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: ts.Name, Namespace: ts.Namespace},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: pacerv1.GroupVersion.String(), Kind: "TunedService", Name: ts.Name,
			},
			MinReplicas: ptr.To(t.Bounds.Replicas.Min),
			MaxReplicas: t.Bounds.Replicas.Max,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{
						Type:               autoscalingv2.UtilizationMetricType,
						AverageUtilization: ptr.To(*t.Objective.TargetUtilization),
					},
				},
			}},
		},
	}
	if d := t.Stabilization.ScaleDown; d != nil {
		hpa.Spec.Behavior = &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: ptr.To(int32(d.Seconds()))},
		}
	}
	return hpa, nil
}

// HPASample is an HPA's status at one moment.
type HPASample struct {
	CurrentReplicas, DesiredReplicas int32
	// CPUUtilization is the pods' average CPU in percent of their request,
	// as the HPA last read it from the resource metrics API (nil: none).
	CPUUtilization *int32
	// Active is the ScalingActive condition: status, reason and message.
	// False with FailedGetResourceMetric means no resource metrics.
	Active, ActiveReason, ActiveMessage string
}

// SampleHPA reads an HPA's status.
func SampleHPA(ctx context.Context, c client.Client, namespace, name string) (*HPASample, error) {
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, hpa); err != nil {
		return nil, err
	}
	return hpaSample(hpa), nil
}

func hpaSample(hpa *autoscalingv2.HorizontalPodAutoscaler) *HPASample {
	s := &HPASample{CurrentReplicas: hpa.Status.CurrentReplicas, DesiredReplicas: hpa.Status.DesiredReplicas}
	for _, m := range hpa.Status.CurrentMetrics {
		if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Current.AverageUtilization != nil {
			s.CPUUtilization = ptr.To(*m.Resource.Current.AverageUtilization)
		}
	}
	for _, c := range hpa.Status.Conditions {
		if c.Type == autoscalingv2.ScalingActive {
			s.Active, s.ActiveReason, s.ActiveMessage = string(c.Status), c.Reason, c.Message
		}
	}
	return s
}

// String is the table's description of the HPA's state.
func (h *HPASample) String() string {
	cpu := "cpu ?"
	if h.CPUUtilization != nil {
		cpu = fmt.Sprintf("cpu %d%%", *h.CPUUtilization)
	}
	s := fmt.Sprintf("hpa: %s, replicas %d", cpu, h.CurrentReplicas)
	if h.DesiredReplicas > 0 && h.DesiredReplicas != h.CurrentReplicas {
		s += fmt.Sprintf(" → %d", h.DesiredReplicas)
	}
	if h.Active == string(corev1.ConditionFalse) {
		s += ": " + h.ActiveMessage
	}
	return s
}

// MetricsVerdict says whether the HPA ever read the pods' CPU from the
// resource metrics API during the run: "available", or "not available:
// <the HPA's last word>" (then it could not scale, and acted as static).
func MetricsVerdict(samples []Sample) string {
	last := "the HPA reported no status"
	for _, s := range samples {
		if s.HPA == nil {
			continue
		}
		if s.HPA.CPUUtilization != nil {
			return "available"
		}
		if s.HPA.ActiveReason != "" {
			last = s.HPA.ActiveReason + ": " + s.HPA.ActiveMessage
		}
	}
	return "not available: " + last
}

// Change is one settings change of a run: a tuner's applied change, or an
// HPA's rescale (setting "replicas").
type Change struct {
	Seconds float64 `json:"t"`
	Setting string  `json:"setting"`
	From    int32   `json:"from"`
	To      int32   `json:"to"`
	Reason  string  `json:"reason"`
	// Count is how many times the HPA's event recorder saw the same rescale
	// (same size and reason) and folded it into one Event; 1 otherwise.
	Count int32 `json:"count,omitempty"`
}

var newSize = regexp.MustCompile(`^New size: (\d+); reason: (.*)$`)

// HPAChanges lists the HPA's rescales from its SuccessfulRescale Events
// ("New size: 3; reason: cpu resource utilization (percentage of request)
// above target"), oldest first, each from the size before it (initial for
// the first), timed from start. Only the Events of the HPA object with uid
// count: a campaign recreates the HPA under the same name in each
// repetition, and the namespace keeps the Events of the ones before.
func HPAChanges(events []corev1.Event, hpaName string, uid types.UID, initial int32, start time.Time) []Change {
	type rescale struct {
		at    time.Time
		to    int32
		why   string
		count int32
	}
	var rs []rescale
	for _, e := range events {
		if e.InvolvedObject.Kind != "HorizontalPodAutoscaler" || e.InvolvedObject.Name != hpaName || e.InvolvedObject.UID != uid || e.Reason != "SuccessfulRescale" {
			continue
		}
		m := newSize.FindStringSubmatch(e.Message)
		if m == nil {
			continue
		}
		to, err := strconv.ParseInt(m[1], 10, 32)
		if err != nil {
			continue
		}
		rs = append(rs, rescale{at: eventTime(e), to: int32(to), why: m[2], count: max(e.Count, 1)})
	}
	slices.SortStableFunc(rs, func(a, b rescale) int { return a.at.Compare(b.at) })
	out := make([]Change, 0, len(rs))
	from := initial
	for _, r := range rs {
		c := Change{Seconds: r.at.Sub(start).Round(time.Second).Seconds(), Setting: "replicas", From: from, To: r.to, Reason: r.why}
		if r.count > 1 {
			c.Count = r.count
		}
		out = append(out, c)
		from = r.to
	}
	return out
}

// eventTime is when an Event last happened, whichever API wrote it.
func eventTime(e corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	default:
		return e.FirstTimestamp.Time
	}
}

// HPAEvents lists the Events about the HPA named name.
func HPAEvents(ctx context.Context, c client.Client, namespace, name string) ([]corev1.Event, error) {
	var list corev1.EventList
	if err := c.List(ctx, &list, client.InNamespace(namespace), client.MatchingFields{
		"involvedObject.kind": "HorizontalPodAutoscaler", "involvedObject.name": name,
	}); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// TunerChanges lists the tuner's applied changes, timed from start.
func TunerChanges(decisions []pacerv1.Decision, start time.Time) []Change {
	var out []Change
	for _, d := range decisions {
		if !d.Applied {
			continue
		}
		for _, c := range d.Changes {
			out = append(out, Change{Seconds: d.Time.Sub(start).Round(time.Second).Seconds(), Setting: c.Setting, From: c.From, To: c.To, Reason: c.Reason})
		}
	}
	return out
}
