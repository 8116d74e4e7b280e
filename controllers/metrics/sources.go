package metrics

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// SourcesOptions configure Sources.
type SourcesOptions struct {
	// Pods configures the one Pods source shared by every TunedService.
	Pods PodsOptions
	// Prometheus is the template of each Prometheus source; URL is taken
	// from the TunedService's spec.tuning.metrics.prometheusURL, and Client
	// is made per server and credentials from Endpoints.
	Prometheus PrometheusOptions
	// Endpoints are the Prometheus servers TunedServices may name; nil
	// means DefaultAllowedEndpoints.
	Endpoints *EndpointPolicy
	// BudgetBytes bounds the bytes of metrics answers every source holds
	// at once; 0 means DefaultBudgetBytes.
	BudgetBytes int64
	// AllowHTTPCredentials lets credentials (an authSecretRef, or a user
	// and password in the URL) go to a plain http URL, where anyone on
	// the path can read them. Off by default.
	AllowHTTPCredentials bool
}

// ErrHTTPCredentials is the error of credentials for a plain http URL.
var ErrHTTPCredentials = errors.New("credentials are never sent to a plain http prometheusURL: use https " +
	"(or ask the operator's administrator for --metrics-allow-http-credentials)")

// Sources hands each TunedService the source its spec.tuning.metrics asks
// for: one shared Pods source (it keeps the scrape history), or a
// Prometheus source over a client shared by every TunedService that names
// the same server (scheme and host) with the same credentials. A client,
// its idle connections and its credentials are dropped when no
// TunedService uses it any more. Safe for concurrent use.
type Sources struct {
	pods      *Pods
	template  PrometheusOptions
	endpoints *EndpointPolicy
	httpCreds bool

	mu      sync.Mutex
	clients map[clientKey]*sharedClient
	userOf  map[types.NamespacedName]clientKey
	clock   uint64 // orders uses, for eviction
}

// clientKey identifies a Prometheus client: a path or a query string makes
// no new one.
type clientKey struct{ scheme, host, auth string }

type sharedClient struct {
	client   *promClient
	users    map[types.NamespacedName]bool
	lastUsed uint64
}

// maxPrometheusClients bounds the cached Prometheus clients; past it the
// least recently used one is dropped, its idle connections closed.
const maxPrometheusClients = 64

// NewSources returns Sources.
func NewSources(o SourcesOptions) *Sources {
	endpoints := o.Endpoints
	if endpoints == nil {
		endpoints, _ = ParseEndpointPolicy(DefaultAllowedEndpoints)
	}
	budget := NewBudget(cmp.Or(o.BudgetBytes, DefaultBudgetBytes))
	o.Pods.Budget, o.Prometheus.Budget = budget, budget
	return &Sources{
		pods: NewPods(o.Pods), template: o.Prometheus, endpoints: endpoints, httpCreds: o.AllowHTTPCredentials,
		clients: map[clientKey]*sharedClient{}, userOf: map[types.NamespacedName]clientKey{},
	}
}

// Pods is the shared Pods source.
func (s *Sources) Pods() *Pods { return s.pods }

// For returns the source of the TunedService key for spec (Pods when
// Source is empty); auth, when not nil, are the credentials for a
// Prometheus server. A Prometheus URL outside the allowed endpoints is
// ErrNotAllowed.
func (s *Sources) For(key types.NamespacedName, spec pacerv1.MetricsSpec, auth *PrometheusAuth) (Source, error) {
	switch spec.Source {
	case "", pacerv1.MetricsFromPods:
		s.release(key)
		return s.pods, nil
	case pacerv1.MetricsFromPrometheus:
	default:
		return nil, fmt.Errorf("metrics: unknown metrics source %q", spec.Source)
	}
	if err := s.allowed(spec, auth != nil); err != nil {
		return nil, err
	}
	u, err := url.Parse(spec.PrometheusURL)
	if err != nil {
		return nil, ErrNotAllowed // allowed parsed it: not reached
	}
	client, err := s.client(key, clientKey{u.Scheme, strings.ToLower(u.Host), auth.key()}, auth)
	if err != nil {
		return nil, err
	}
	o := s.template
	o.URL = spec.PrometheusURL
	o.Client = client.http
	return NewPrometheus(o)
}

// client returns the shared client of ck for key, making it if need be.
func (s *Sources) client(key types.NamespacedName, ck clientKey, auth *PrometheusAuth) (*promClient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.userOf[key]; ok && old != ck {
		s.releaseLocked(key)
	}
	c := s.clients[ck]
	if c == nil {
		client, err := newPrometheusClient(s.endpoints, auth)
		if err != nil {
			return nil, err
		}
		if len(s.clients) >= maxPrometheusClients {
			s.evictLocked()
		}
		c = &sharedClient{client: client, users: map[types.NamespacedName]bool{}}
		s.clients[ck] = c
	}
	s.clock++
	c.lastUsed = s.clock
	c.users[key] = true
	s.userOf[key] = ck
	return c.client, nil
}

// release drops key's use of its Prometheus client, if any.
func (s *Sources) release(key types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(key)
}

func (s *Sources) releaseLocked(key types.NamespacedName) {
	ck, ok := s.userOf[key]
	if !ok {
		return
	}
	delete(s.userOf, key)
	c := s.clients[ck]
	if c == nil {
		return
	}
	delete(c.users, key)
	if len(c.users) == 0 {
		s.dropLocked(ck, c)
	}
}

// evictLocked drops the least recently used client; its users get a new
// one on their next observation.
func (s *Sources) evictLocked() {
	var oldest clientKey
	var victim *sharedClient
	for ck, c := range s.clients {
		if victim == nil || c.lastUsed < victim.lastUsed {
			oldest, victim = ck, c
		}
	}
	if victim == nil {
		return
	}
	for key := range victim.users {
		delete(s.userOf, key)
	}
	s.dropLocked(oldest, victim)
}

// dropLocked forgets a client: its idle connections close now (one in use
// closes when its request ends), and its credentials go with it.
func (s *Sources) dropLocked(ck clientKey, c *sharedClient) {
	delete(s.clients, ck)
	c.client.transport.CloseIdleConnections()
}

// Allowed reports ErrNotAllowed when spec names a Prometheus server the
// operator may not fetch, and ErrHTTPCredentials when it would send
// credentials (spec.authSecretRef) over plain http. It reads nothing.
func (s *Sources) Allowed(spec pacerv1.MetricsSpec) error {
	if spec.Source != pacerv1.MetricsFromPrometheus {
		return nil
	}
	return s.allowed(spec, spec.AuthSecretRef != nil)
}

func (s *Sources) allowed(spec pacerv1.MetricsSpec, withAuth bool) error {
	if err := s.endpoints.Check(spec.PrometheusURL); err != nil {
		return err
	}
	u, err := url.Parse(spec.PrometheusURL)
	if err != nil {
		return ErrNotAllowed // Check parsed it: not reached
	}
	if u.Scheme == "http" && (withAuth || u.User != nil) && !s.httpCreds {
		return ErrHTTPCredentials
	}
	return nil
}

// Forget drops what any source keeps about a TunedService, its Prometheus
// client and credentials included when no other TunedService shares them;
// call it when the TunedService is deleted, stops being tuned or changes
// source.
func (s *Sources) Forget(namespace, name string) {
	s.pods.Forget(namespace, name)
	s.release(types.NamespacedName{Namespace: namespace, Name: name})
}

// clientCount is the number of cached Prometheus clients.
func (s *Sources) clientCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}
