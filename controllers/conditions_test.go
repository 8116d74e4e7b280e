package controllers

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// deployment is a Deployment with its minimum availability met (as its
// controller reports it) unless conds say otherwise.
func deployment(replicas, updated, ready int32, conds ...appsv1.DeploymentCondition) *appsv1.Deployment {
	conds = append(conds, appsv1.DeploymentCondition{Type: appsv1.DeploymentAvailable, Status: corev1.ConditionTrue, Reason: "MinimumReplicasAvailable"})
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status: appsv1.DeploymentStatus{
			ObservedGeneration: 2, Replicas: replicas, UpdatedReplicas: updated, ReadyReplicas: ready,
			Conditions: conds,
		},
	}
}

// summary is "Status/Reason" per condition type, the part users act on.
func summary(cs []metav1.Condition) map[string]string {
	out := map[string]string{}
	for _, c := range cs {
		out[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return out
}

func TestConditions(t *testing.T) {
	auto := &pacerv1.TunedService{Spec: pacerv1.TunedServiceSpec{Tuning: pacerv1.TuningSpec{Mode: pacerv1.TuningAuto}}}
	off := &pacerv1.TunedService{Spec: pacerv1.TunedServiceSpec{Tuning: pacerv1.TuningSpec{Mode: pacerv1.TuningOff}}}
	tests := []struct {
		name string
		in   conditionInput
		want map[string]string
	}{{
		name: "all pods ready",
		in:   conditionInput{ts: auto, deployment: deployment(3, 3, 3)},
		want: map[string]string{"Available": "True/PodsReady", "Progressing": "False/RolloutComplete", "Degraded": "False/AsExpected", "Tuned": "Unknown/AwaitingMetrics"},
	}, {
		name: "rolling out with some pods ready",
		in:   conditionInput{ts: off, deployment: deployment(3, 1, 2)},
		want: map[string]string{"Available": "True/PodsReady", "Progressing": "True/RollingOut", "Degraded": "False/AsExpected", "Tuned": "False/TuningDisabled"},
	}, {
		name: "no pod ready yet",
		in:   conditionInput{ts: off, deployment: deployment(2, 2, 0)},
		want: map[string]string{"Available": "False/NoReadyPods", "Progressing": "True/RollingOut", "Degraded": "False/AsExpected", "Tuned": "False/TuningDisabled"},
	}, {
		name: "below the Deployment's minimum availability",
		in: conditionInput{ts: off, deployment: deployment(3, 3, 1, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentAvailable, Status: corev1.ConditionFalse, Reason: "MinimumReplicasUnavailable",
		})},
		want: map[string]string{"Available": "False/MinimumPodsUnavailable", "Progressing": "True/RollingOut", "Degraded": "False/AsExpected", "Tuned": "False/TuningDisabled"},
	}, {
		name: "scaled to zero",
		in:   conditionInput{ts: off, deployment: deployment(0, 0, 0)},
		want: map[string]string{"Available": "False/ScaledToZero", "Progressing": "False/RolloutComplete", "Degraded": "False/AsExpected", "Tuned": "False/TuningDisabled"},
	}, {
		name: "rollout stalled",
		in: conditionInput{ts: off, deployment: deployment(2, 1, 1, appsv1.DeploymentCondition{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded", Message: "stuck",
		})},
		want: map[string]string{"Available": "True/PodsReady", "Progressing": "False/ProgressDeadlineExceeded", "Degraded": "True/RolloutStalled", "Tuned": "False/TuningDisabled"},
	}, {
		name: "missing Secret, nothing rendered",
		in:   conditionInput{ts: off, problems: []problem{{reason: "SecretNotFound", message: "no db"}}},
		want: map[string]string{"Available": "False/DeploymentNotReady", "Progressing": "True/Creating", "Degraded": "True/SecretNotFound", "Tuned": "False/TuningDisabled"},
	}, {
		name: "failed pass",
		in:   conditionInput{ts: off, deployment: deployment(1, 1, 1), passErr: errors.New("boom")},
		want: map[string]string{"Available": "True/PodsReady", "Progressing": "False/RolloutComplete", "Degraded": "True/ReconcileError", "Tuned": "False/TuningDisabled"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, summary(conditions(tc.in))); diff != "" {
				t.Errorf("conditions (-want +got):\n%s", diff)
			}
		})
	}
}
