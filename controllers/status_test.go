package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// A TunedService deleted while its pass runs has no status left to write:
// that is not an error to retry.
func TestWriteStatusOnADeletedObjectIsNotAnError(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	ts := newTunedService(ns, "gone")
	create(t, s.client, ts)
	read := &pacerv1.TunedService{}
	g.Expect(get(s.client, withKey(read, ts))()).To(Succeed())
	g.Expect(s.client.Delete(context.Background(), ts)).To(Succeed())

	r := &TunedServiceReconciler{Client: s.client}
	sc := newScope(read)
	meta.SetStatusCondition(&read.Status.Conditions, metav1.Condition{Type: "X", Status: metav1.ConditionTrue, Reason: "Y"})
	g.Expect(r.writeStatus(context.Background(), sc, nil)).To(Succeed())
}

// A problem is announced with a Warning when it first appears, not again
// while the Degraded condition already reports it.
func TestWarningsOnlyForNewProblems(t *testing.T) {
	g := NewWithT(t)
	rec := events.NewFakeRecorder(8)
	r := &TunedServiceReconciler{Recorder: rec}
	ts := newTunedService("ns", "svc")
	taken := problem{reason: "NotOwned", message: "ConfigMap svc-config exists and is not controlled by this TunedService."}

	s := newScope(ts)
	s.problems = []problem{taken}
	r.warnNewProblems(s)
	g.Expect(drain(rec)).To(HaveLen(1), "a new problem is announced")

	meta.SetStatusCondition(&ts.Status.Conditions, metav1.Condition{
		Type: pacerv1.ConditionDegraded, Status: metav1.ConditionTrue, Reason: "NotOwned", Message: taken.message,
	})
	s = newScope(ts)
	s.problems = []problem{taken, {reason: "SecretNotFound", message: "Secret db does not exist"}}
	r.warnNewProblems(s)
	g.Expect(drain(rec)).To(ConsistOf(ContainSubstring("SecretNotFound")), "only the new one")
}
