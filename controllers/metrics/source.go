// Package metrics observes the pods of a TunedService and reduces what they
// report to a tuning.Window (DESIGN.md, Contract 2 and the control loop):
// request, error, shed and 429 rates, latency quantiles from histogram
// bucket deltas, worker, pool and cache figures, CPU use and the config
// generation every pod runs.
//
// Two sources produce the same Window:
//   - Pods (the default) scrapes each ready pod's admin /metrics endpoint
//     and keeps the last scrapes per pod; a window runs from an earlier
//     scrape to the newest one.
//   - Prometheus asks a Prometheus server that already scrapes the pods,
//     with PromQL over a range as long as the tuning interval.
//
// A window is Sufficient only when every ready pod was observed, every pod
// ran the target config generation for the whole window and enough requests
// were seen; otherwise Reason says why and the tuner must not act on it.
// Metric names come from service/metrics, the names pacer-api registers.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/pacer-dev/pacer/controllers/tuning"
)

// DefaultAdminPort is pacer-api's admin port (/metrics, /healthz, /readyz)
// when a Pod does not say otherwise.
const DefaultAdminPort = 9090

// Source observes one TunedService. Each TunedService's observer
// (controllers/observe) calls Observe once per tuning interval, off the
// reconcile workers; the context ends at the observation's deadline.
// Implementations are safe for concurrent use by several observers.
type Source interface {
	// Observe returns the window ending now. A window that must not be acted
	// on is returned with Sufficient false and a Reason, not as an error; an
	// error means the source itself failed (a bad Target, a canceled
	// context, an unreachable Prometheus).
	Observe(ctx context.Context, t Target) (tuning.Window, error)
	// Forget drops everything kept about a TunedService (call it when the
	// TunedService is deleted or stops being tuned).
	Forget(namespace, name string)
}

// Target says what to observe: one TunedService and its ready pods.
type Target struct {
	// Namespace and Name identify the TunedService; the pods are in Namespace.
	Namespace, Name string
	// Pods are the ready pods. Pods not listed are not observed (and the
	// Pods source forgets what it kept about them).
	Pods []Pod
	// Generation is the latest config generation the operator rendered. A
	// window counts only when every pod ran it for the whole window.
	Generation int64
	// MinRequests is the fewest requests, all pods together, for a window to
	// count; 0 accepts any number, even none.
	MinRequests int64
	// Interval is the tuning interval. The Pods source makes a window at
	// least Interval/2 long (longer windows are kept from scrapes older than
	// the previous call when Observe is called more often); the Prometheus
	// source queries over the last Interval (at least four scrape intervals).
	Interval time.Duration
}

// Pod is one ready pod of the target.
type Pod struct {
	// Name is the pod's name (the `pod` label in Prometheus).
	Name string
	// UID, when set, tells a recreated pod of the same name from the old
	// one: the Pods source starts a fresh history for a new UID or address.
	UID string
	// Host is the pod's IP address or host name.
	Host string
	// Port is the admin port; 0 means DefaultAdminPort.
	Port int32
}

// Addr is the pod's admin host:port.
func (p Pod) Addr() string {
	port := p.Port
	if port == 0 {
		port = DefaultAdminPort
	}
	return net.JoinHostPort(p.Host, strconv.Itoa(int(port)))
}

func (t Target) key() targetKey { return targetKey{t.Namespace, t.Name} }

type targetKey struct{ namespace, name string }

// validate reports Target mistakes that are the caller's bug, not a state
// of the pods.
func (t Target) validate(needHosts bool) error {
	if t.Namespace == "" || t.Name == "" {
		return errors.New("metrics: target needs a namespace and a name")
	}
	if t.Interval < 0 || t.MinRequests < 0 {
		return fmt.Errorf("metrics: target %s/%s: negative interval or minRequests", t.Namespace, t.Name)
	}
	seen := make(map[string]bool, len(t.Pods))
	for _, p := range t.Pods {
		if p.Name == "" {
			return fmt.Errorf("metrics: target %s/%s: a pod without a name", t.Namespace, t.Name)
		}
		if seen[p.Name] {
			return fmt.Errorf("metrics: target %s/%s: pod %s listed twice", t.Namespace, t.Name, p.Name)
		}
		seen[p.Name] = true
		if needHosts && p.Host == "" {
			return fmt.Errorf("metrics: target %s/%s: pod %s has no host (IP)", t.Namespace, t.Name, p.Name)
		}
		if p.Port < 0 || p.Port > 65535 {
			return fmt.Errorf("metrics: target %s/%s: pod %s: port %d out of range", t.Namespace, t.Name, p.Name, p.Port)
		}
	}
	return nil
}
