package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// FieldManager is the server-side apply field manager of everything Pacer writes.
const FieldManager = "pacer"

// applier writes desired objects with server-side apply, and skips the
// request when the same desired state was already applied to the object's
// current resourceVersion. A hand edit changes the resourceVersion, so it
// is repaired on the next pass; a pass that changes nothing writes nothing.
// The idea is Cluster API's SSA request cache.
type applier struct {
	client client.Client

	mu   sync.Mutex
	seen map[applyKey]applied
}

type applyKey struct {
	kind string
	name types.NamespacedName
}

type applied struct {
	desiredHash     string
	resourceVersion string
}

func newApplier(c client.Client) *applier {
	return &applier{client: c, seen: map[applyKey]applied{}}
}

// applyConfig is an apply configuration with the metadata accessors every
// generated one has.
type applyConfig interface {
	runtime.ApplyConfiguration
	GetName() *string
	GetNamespace() *string
	GetKind() *string
}

// apply writes desired unless it was already applied at currentRV, and
// reports whether it sent a request.
func (a *applier) apply(ctx context.Context, desired applyConfig, currentRV string) (bool, error) {
	key := applyKey{
		kind: deref(desired.GetKind()),
		name: types.NamespacedName{Namespace: deref(desired.GetNamespace()), Name: deref(desired.GetName())},
	}
	hash, err := hashOf(desired)
	if err != nil {
		return false, err
	}

	a.mu.Lock()
	last, ok := a.seen[key]
	a.mu.Unlock()
	if ok && currentRV != "" && last.resourceVersion == currentRV && last.desiredHash == hash {
		return false, nil
	}

	if err := a.client.Apply(ctx, desired, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return true, fmt.Errorf("apply %s %s: %w", key.kind, key.name, err)
	}

	a.mu.Lock()
	a.seen[key] = applied{desiredHash: hash, resourceVersion: resourceVersionOf(desired)}
	a.mu.Unlock()
	return true, nil
}

// forget drops what is known of an object, after it was deleted.
func (a *applier) forget(kind string, name types.NamespacedName) {
	a.mu.Lock()
	delete(a.seen, applyKey{kind: kind, name: name})
	a.mu.Unlock()
}

// forgetOwner drops what is known of every child of a deleted TunedService
// (all its children share its namespace and start with its name).
func (a *applier) forgetOwner(owner types.NamespacedName) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.seen {
		if k.name.Namespace == owner.Namespace &&
			(k.name.Name == owner.Name || k.name.Name == owner.Name+"-config") {
			delete(a.seen, k)
		}
	}
}

func hashOf(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("hash desired object: %w", err)
	}
	sum := sha256.Sum256(b)
	return string(sum[:]), nil
}

// resourceVersionOf reads the resourceVersion the server answered an apply
// with; the client decodes the response into the apply configuration.
func resourceVersionOf(ac any) string {
	var obj struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	b, err := json.Marshal(ac)
	if err != nil || json.Unmarshal(b, &obj) != nil {
		return "" // unknown: the next pass applies again, which is safe
	}
	return obj.Metadata.ResourceVersion
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// toTyped decodes an apply configuration, as answered by the server, into
// its typed object.
func toTyped[T any](ac any) (*T, error) {
	b, err := json.Marshal(ac)
	if err != nil {
		return nil, err
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		return nil, err
	}
	return out, nil
}
