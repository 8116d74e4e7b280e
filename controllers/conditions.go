package controllers

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// conditionInput is what the conditions are computed from.
type conditionInput struct {
	ts         *pacerv1.TunedService
	deployment *appsv1.Deployment // nil when not (yet) rendered
	problems   []problem
	passErr    error
	tuned      *metav1.Condition // from the tuning step, when it ran
}

// conditions computes Available, Progressing, Degraded and Tuned. It is a
// pure function of its input; lastTransitionTime is handled by the caller.
func conditions(in conditionInput) []metav1.Condition {
	return []metav1.Condition{
		available(in),
		progressing(in),
		degraded(in),
		tuned(in.ts, in.tuned),
	}
}

func available(in conditionInput) metav1.Condition {
	c := metav1.Condition{Type: pacerv1.ConditionAvailable}
	d := in.deployment
	switch {
	case d == nil:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "DeploymentNotReady", "the Deployment has not been created yet"
	case ptr.Deref(d.Spec.Replicas, 1) == 0:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "ScaledToZero", "replicas is 0"
	case d.Status.ReadyReplicas == 0:
		c.Status, c.Reason = metav1.ConditionFalse, "NoReadyPods"
		c.Message = fmt.Sprintf("0 of %d pods ready", ptr.Deref(d.Spec.Replicas, 1))
	default:
		c.Status, c.Reason = metav1.ConditionTrue, "PodsReady"
		c.Message = fmt.Sprintf("%d of %d pods ready", d.Status.ReadyReplicas, ptr.Deref(d.Spec.Replicas, 1))
	}
	return c
}

func progressing(in conditionInput) metav1.Condition {
	c := metav1.Condition{Type: pacerv1.ConditionProgressing}
	d := in.deployment
	if d == nil {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, "Creating", "creating the Deployment"
		return c
	}
	if stalled := deploymentCondition(d, appsv1.DeploymentProgressing); stalled != nil &&
		stalled.Status == corev1.ConditionFalse {
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, stalled.Reason, stalled.Message
		return c
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	if s.ObservedGeneration < d.Generation || s.UpdatedReplicas < want || s.ReadyReplicas < want ||
		s.Replicas > want {
		c.Status, c.Reason = metav1.ConditionTrue, "RollingOut"
		c.Message = fmt.Sprintf("%d of %d pods updated, %d ready", s.UpdatedReplicas, want, s.ReadyReplicas)
		return c
	}
	c.Status, c.Reason = metav1.ConditionFalse, "RolloutComplete"
	c.Message = fmt.Sprintf("all %d pods run the current template", want)
	return c
}

func degraded(in conditionInput) metav1.Condition {
	c := metav1.Condition{Type: pacerv1.ConditionDegraded}
	if len(in.problems) > 0 {
		msgs := make([]string, len(in.problems))
		for i, p := range in.problems {
			msgs[i] = p.message
		}
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, in.problems[0].reason, strings.Join(msgs, "; ")
		return c
	}
	if in.passErr != nil {
		c.Status, c.Reason, c.Message = metav1.ConditionTrue, "ReconcileError", in.passErr.Error()
		return c
	}
	if d := in.deployment; d != nil {
		if p := deploymentCondition(d, appsv1.DeploymentProgressing); p != nil && p.Status == corev1.ConditionFalse {
			c.Status, c.Reason, c.Message = metav1.ConditionTrue, "RolloutStalled", p.Message
			return c
		}
		if f := deploymentCondition(d, appsv1.DeploymentReplicaFailure); f != nil && f.Status == corev1.ConditionTrue {
			c.Status, c.Reason, c.Message = metav1.ConditionTrue, "ReplicaFailure", f.Message
			return c
		}
	}
	c.Status, c.Reason, c.Message = metav1.ConditionFalse, "AsExpected", "all children match the spec"
	return c
}

func tuned(ts *pacerv1.TunedService, fromStep *metav1.Condition) metav1.Condition {
	c := metav1.Condition{Type: pacerv1.ConditionTuned}
	switch {
	case fromStep != nil:
		c.Status, c.Reason, c.Message = fromStep.Status, fromStep.Reason, fromStep.Message
	case tuning.ModeOf(ts.Spec.Tuning.Mode) == pacerv1.TuningDisabled:
		c.Status, c.Reason, c.Message = metav1.ConditionFalse, "TuningDisabled", "tuning.mode is Disabled: the spec is rendered as written"
	default:
		c.Status, c.Reason = metav1.ConditionUnknown, "AwaitingMetrics"
		c.Message = fmt.Sprintf("tuning.mode is %s: waiting for a metrics window", modeOrDefault(ts.Spec.Tuning.Mode))
	}
	return c
}

func modeOrDefault(m pacerv1.TuningMode) pacerv1.TuningMode { return tuning.ModeOf(m) }

func deploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}
