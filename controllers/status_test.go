package controllers

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
