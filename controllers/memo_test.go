package controllers

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// A pass that starts from a stale cache must see the status the previous
// pass wrote, or the tuner's choices and history would go back in time.
func TestStatusMemoOutlivesAStaleCache(t *testing.T) {
	var m statusMemo
	written := &pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1"}}
	written.Status.Effective = &pacerv1.EffectiveSettings{Settings: pacerv1.Settings{Replicas: 3}, ConfigGeneration: 4}
	written.Status.History = []pacerv1.Decision{{Mode: pacerv1.TuningAuto, Applied: true}}
	m.remember(written)
	written.Status.Effective.Replicas = 99 // the memo holds a copy

	stale := &pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1"}}
	stale.Status.Effective = &pacerv1.EffectiveSettings{Settings: pacerv1.Settings{Replicas: 1}, ConfigGeneration: 3}
	m.restore(stale)
	if stale.Status.Effective.Replicas != 3 || stale.Status.Effective.ConfigGeneration != 4 || len(stale.Status.History) != 1 {
		t.Errorf("restored status = %+v, want the one written", stale.Status)
	}

	recreated := &pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u2"}}
	m.restore(recreated)
	if recreated.Status.Effective != nil {
		t.Error("a recreated TunedService inherited its predecessor's status")
	}

	m.forget(key(written))
	again := &pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a", UID: "u1"}}
	m.restore(again)
	if again.Status.Effective != nil {
		t.Error("forget kept the status")
	}
}
