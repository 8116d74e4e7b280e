package metrics

import (
	"cmp"
	"fmt"
	"sync"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// SourcesOptions configure Sources.
type SourcesOptions struct {
	// Pods configures the one Pods source shared by every TunedService.
	Pods PodsOptions
	// Prometheus is the template of each Prometheus source; URL is taken
	// from the TunedService's spec.tuning.metrics.prometheusURL, and Client
	// is made per source from Endpoints and the credentials.
	Prometheus PrometheusOptions
	// Endpoints are the Prometheus servers TunedServices may name; nil
	// means DefaultAllowedEndpoints.
	Endpoints *EndpointPolicy
	// BudgetBytes bounds the bytes of metrics answers every source holds
	// at once; 0 means DefaultBudgetBytes.
	BudgetBytes int64
}

// Sources hands each TunedService the source its spec.tuning.metrics asks
// for: one shared Pods source (it keeps the scrape history), and one
// Prometheus source per distinct prometheusURL. Safe for concurrent use.
type Sources struct {
	pods      *Pods
	template  PrometheusOptions
	endpoints *EndpointPolicy

	mu   sync.Mutex
	prom map[promKey]*Prometheus
}

type promKey struct{ url, auth string }

// maxPrometheusSources bounds the cached Prometheus clients; past it the
// cache starts over (a client is cheap to make).
const maxPrometheusSources = 64

// NewSources returns Sources.
func NewSources(o SourcesOptions) *Sources {
	endpoints := o.Endpoints
	if endpoints == nil {
		endpoints, _ = ParseEndpointPolicy(DefaultAllowedEndpoints)
	}
	budget := NewBudget(cmp.Or(o.BudgetBytes, DefaultBudgetBytes))
	o.Pods.Budget, o.Prometheus.Budget = budget, budget
	return &Sources{pods: NewPods(o.Pods), template: o.Prometheus, endpoints: endpoints, prom: map[promKey]*Prometheus{}}
}

// Pods is the shared Pods source.
func (s *Sources) Pods() *Pods { return s.pods }

// For returns the source for spec (Pods when Source is empty); auth, when
// not nil, are the credentials for a Prometheus server. A Prometheus URL
// outside the allowed endpoints is ErrNotAllowed.
func (s *Sources) For(spec pacerv1.MetricsSpec, auth *PrometheusAuth) (Source, error) {
	switch spec.Source {
	case "", pacerv1.MetricsFromPods:
		return s.pods, nil
	case pacerv1.MetricsFromPrometheus:
	default:
		return nil, fmt.Errorf("metrics: unknown metrics source %q", spec.Source)
	}
	if err := s.endpoints.Check(spec.PrometheusURL); err != nil {
		return nil, err
	}
	key := promKey{spec.PrometheusURL, auth.key()}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.prom[key]; p != nil {
		return p, nil
	}
	client, err := newPrometheusClient(s.endpoints, auth)
	if err != nil {
		return nil, err
	}
	o := s.template
	o.URL = spec.PrometheusURL
	o.Client = client
	p, err := NewPrometheus(o)
	if err != nil {
		return nil, err
	}
	if len(s.prom) >= maxPrometheusSources {
		clear(s.prom)
	}
	s.prom[key] = p
	return p, nil
}

// Allowed reports ErrNotAllowed when spec names a Prometheus server the
// operator may not fetch.
func (s *Sources) Allowed(spec pacerv1.MetricsSpec) error {
	if spec.Source != pacerv1.MetricsFromPrometheus {
		return nil
	}
	return s.endpoints.Check(spec.PrometheusURL)
}

// Forget drops what any source keeps about a TunedService; call it when the
// TunedService is deleted, stops being tuned or changes source.
func (s *Sources) Forget(namespace, name string) { s.pods.Forget(namespace, name) }
