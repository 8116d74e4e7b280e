package controllers

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// statusMemo remembers the status each pass wrote, by object UID. The
// informer cache may not show a write yet when the next pass starts (an
// Owns event can arrive first), and the tuner's settings, history and
// observation times must never go back in time: Pacer is the only writer
// of status, so what it last wrote is the truth. A new manager (restart,
// leader change) starts from the status it reads.
type statusMemo struct {
	mu     sync.Mutex
	byName map[types.NamespacedName]memoEntry
}

type memoEntry struct {
	uid    types.UID // a TunedService recreated under the same name starts afresh
	status pacerv1.TunedServiceStatus
}

// restore replaces ts's status by the one last written for it, if any.
func (m *statusMemo) restore(ts *pacerv1.TunedService) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.byName[key(ts)]; ok && e.uid == ts.UID {
		e.status.DeepCopyInto(&ts.Status)
	}
}

func (m *statusMemo) remember(ts *pacerv1.TunedService) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byName == nil {
		m.byName = map[types.NamespacedName]memoEntry{}
	}
	m.byName[key(ts)] = memoEntry{uid: ts.UID, status: *ts.Status.DeepCopy()}
}

func (m *statusMemo) forget(name types.NamespacedName) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byName, name)
}

func key(ts *pacerv1.TunedService) types.NamespacedName {
	return types.NamespacedName{Namespace: ts.Namespace, Name: ts.Name}
}
