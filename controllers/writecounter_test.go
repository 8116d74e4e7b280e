package controllers

import (
	"context"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeCounter wraps the reconciler's client and counts its writes per
// namespace, so tests can prove that a steady state writes nothing.
type writeCounter struct {
	client.Client
	mu     sync.Mutex
	counts map[string]int
}

func newWriteCounter(c client.Client) *writeCounter {
	return &writeCounter{Client: c, counts: map[string]int{}}
}

func (w *writeCounter) add(namespace string) {
	w.mu.Lock()
	w.counts[namespace]++
	w.mu.Unlock()
}

// In returns the number of writes so far in namespace.
func (w *writeCounter) In(namespace string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[namespace]
}

// Total returns the number of writes so far.
func (w *writeCounter) Total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, c := range w.counts {
		n += c
	}
	return n
}

func (w *writeCounter) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	w.add(obj.GetNamespace())
	return w.Client.Create(ctx, obj, opts...)
}

func (w *writeCounter) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	w.add(obj.GetNamespace())
	return w.Client.Update(ctx, obj, opts...)
}

func (w *writeCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	w.add(obj.GetNamespace())
	return w.Client.Patch(ctx, obj, patch, opts...)
}

func (w *writeCounter) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	w.add(obj.GetNamespace())
	return w.Client.Delete(ctx, obj, opts...)
}

func (w *writeCounter) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	if ac, ok := obj.(applyConfig); ok {
		w.add(deref(ac.GetNamespace()))
	}
	return w.Client.Apply(ctx, obj, opts...)
}

func (w *writeCounter) Status() client.SubResourceWriter {
	return &statusCounter{SubResourceWriter: w.Client.Status(), w: w}
}

type statusCounter struct {
	client.SubResourceWriter
	w *writeCounter
}

func (s *statusCounter) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	s.w.add(obj.GetNamespace())
	return s.SubResourceWriter.Update(ctx, obj, opts...)
}

func (s *statusCounter) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.w.add(obj.GetNamespace())
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}
