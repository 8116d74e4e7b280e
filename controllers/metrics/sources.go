package metrics

import (
	"fmt"
	"sync"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// SourcesOptions configure Sources.
type SourcesOptions struct {
	// Pods configures the one Pods source shared by every TunedService.
	Pods PodsOptions
	// Prometheus is the template of each Prometheus source; URL is taken
	// from the TunedService's spec.tuning.metrics.prometheusURL.
	Prometheus PrometheusOptions
}

// Sources hands each TunedService the source its spec.tuning.metrics asks
// for: one shared Pods source (it keeps the scrape history), and one
// Prometheus source per distinct prometheusURL. Safe for concurrent use.
type Sources struct {
	pods     *Pods
	template PrometheusOptions

	mu   sync.Mutex
	prom map[string]*Prometheus
}

// maxPrometheusSources bounds the cached Prometheus clients; past it the
// cache starts over (a client is cheap to make).
const maxPrometheusSources = 64

// NewSources returns Sources.
func NewSources(o SourcesOptions) *Sources {
	return &Sources{pods: NewPods(o.Pods), template: o.Prometheus, prom: map[string]*Prometheus{}}
}

// Pods is the shared Pods source.
func (s *Sources) Pods() *Pods { return s.pods }

// For returns the source for spec (Pods when Source is empty).
func (s *Sources) For(spec pacerv1.MetricsSpec) (Source, error) {
	switch spec.Source {
	case "", pacerv1.MetricsFromPods:
		return s.pods, nil
	case pacerv1.MetricsFromPrometheus:
	default:
		return nil, fmt.Errorf("metrics: unknown metrics source %q", spec.Source)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.prom[spec.PrometheusURL]; p != nil {
		return p, nil
	}
	o := s.template
	o.URL = spec.PrometheusURL
	p, err := NewPrometheus(o)
	if err != nil {
		return nil, err
	}
	if len(s.prom) >= maxPrometheusSources {
		clear(s.prom)
	}
	s.prom[spec.PrometheusURL] = p
	return p, nil
}

// Forget drops what any source keeps about a TunedService; call it when the
// TunedService is deleted, stops being tuned or changes source.
func (s *Sources) Forget(namespace, name string) { s.pods.Forget(namespace, name) }
