package metrics

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

func prom(url string) pacerv1.MetricsSpec {
	return pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus, PrometheusURL: url}
}

func TestSourcesFor(t *testing.T) {
	t.Parallel()
	s := NewSources(SourcesOptions{})
	for _, spec := range []pacerv1.MetricsSpec{{}, {Source: pacerv1.MetricsFromPods}} {
		if got, err := s.For(tsKey, spec, nil); err != nil || got != Source(s.Pods()) {
			t.Errorf("For(%+v) = %v, %v; want the shared Pods source", spec, got, err)
		}
	}
	a, err := s.For(tsKey, prom("http://prometheus.monitoring.svc:9090"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := a.(*Prometheus); !ok {
		t.Fatalf("For(Prometheus) = %T, want *Prometheus", a)
	}
	if _, err := s.For(tsKey, prom(""), nil); err == nil {
		t.Error("Prometheus without a URL: no error")
	}
	if _, err := s.For(tsKey, pacerv1.MetricsSpec{Source: "Graphite"}, nil); err == nil {
		t.Error("an unknown source: no error")
	}
}

// One client per server (scheme and host) and credentials: another path or
// query string makes none, other credentials or another server do, and a
// client goes once no TunedService uses it.
func TestSourcesShareClients(t *testing.T) {
	t.Parallel()
	s := NewSources(SourcesOptions{AllowHTTPCredentials: true})
	a, b := tsKey, types.NamespacedName{Namespace: "ns", Name: "other"}
	mustFor := func(key types.NamespacedName, url string, auth *PrometheusAuth) {
		t.Helper()
		if _, err := s.For(key, prom(url), auth); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		mustFor(a, fmt.Sprintf("http://prometheus.monitoring.svc:9090/prom/%d?x=%d", i, i), nil)
	}
	mustFor(b, "http://PROMETHEUS.monitoring.svc:9090", nil)
	if n := s.clientCount(); n != 1 {
		t.Errorf("%d clients for one server, want 1", n)
	}
	mustFor(b, "http://prometheus.monitoring.svc:9090", &PrometheusAuth{BearerToken: "t"})
	if n := s.clientCount(); n != 2 {
		t.Errorf("%d clients after b took credentials, want 2", n)
	}
	s.Forget(b.Namespace, b.Name)
	if n := s.clientCount(); n != 1 {
		t.Errorf("%d clients after b was forgotten, want 1 (its credentials gone)", n)
	}
	mustFor(a, "https://prometheus.monitoring.svc:9090", nil) // a moves: its old client goes
	if n := s.clientCount(); n != 1 {
		t.Errorf("%d clients after a moved to https, want 1", n)
	}
	if _, err := s.For(a, pacerv1.MetricsSpec{}, nil); err != nil {
		t.Fatal(err)
	}
	if n := s.clientCount(); n != 0 {
		t.Errorf("%d clients after a moved to the Pods source, want 0", n)
	}
}

// connTracker counts a test server's connections opened and closed.
type connTracker struct {
	mu             sync.Mutex
	opened, closed int
}

func (c *connTracker) track(_ net.Conn, st http.ConnState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch st {
	case http.StateNew:
		c.opened++
	case http.StateClosed, http.StateHijacked:
		c.closed++
	}
}

func (c *connTracker) counts() (opened, closed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.closed
}

// Observations that differ only in the URL's query string reuse one
// connection; a forgotten TunedService's idle connection is closed, and so
// is the least recently used client's when the cache is full.
func TestSourcesConnections(t *testing.T) {
	t.Parallel()
	var conns connTracker
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	srv.Config.ConnState = conns.track
	srv.Start()
	t.Cleanup(srv.Close)
	s := loopbackSources(t, SourcesOptions{})

	for i := range 30 {
		if err := observeVia(t, s, fmt.Sprintf("%s/?q=%d", srv.URL, i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if opened, _ := conns.counts(); opened != 1 {
		t.Errorf("30 query strings opened %d connections, want 1", opened)
	}
	s.Forget(tsKey.Namespace, tsKey.Name)
	eventuallyTrue(t, "the forgotten client's idle connection is closed", func() bool {
		_, closed := conns.counts()
		return closed == 1
	})

	// A full cache: the first client, least recently used, is evicted.
	for i := range maxPrometheusClients + 1 {
		key := types.NamespacedName{Namespace: "ns", Name: fmt.Sprint("svc-", i)}
		src, err := s.For(key, prom(srv.URL), &PrometheusAuth{BearerToken: fmt.Sprint("token-", i)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.Observe(t.Context(), target); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.clientCount(); n != maxPrometheusClients {
		t.Errorf("%d clients cached, want at most %d", n, maxPrometheusClients)
	}
	eventuallyTrue(t, "the evicted client's idle connection is closed", func() bool {
		_, closed := conns.counts()
		return closed == 2
	})
}

func eventuallyTrue(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Credentials never go to a plain http URL unless the operator allows it:
// neither an authSecretRef's nor a user and password in the URL.
func TestNoCredentialsOverPlainHTTP(t *testing.T) {
	t.Parallel()
	s := NewSources(SourcesOptions{})
	withRef := prom("http://prometheus.monitoring.svc:9090")
	withRef.AuthSecretRef = &pacerv1.SecretRef{Name: "auth"}
	if err := s.Allowed(withRef); !errors.Is(err, ErrHTTPCredentials) {
		t.Errorf("Allowed(http with authSecretRef) = %v, want ErrHTTPCredentials", err)
	}
	if _, err := s.For(tsKey, prom("http://prometheus.monitoring.svc:9090"), &PrometheusAuth{BearerToken: "t"}); !errors.Is(err, ErrHTTPCredentials) {
		t.Errorf("For(http, a token) = %v, want ErrHTTPCredentials", err)
	}
	if _, err := s.For(tsKey, prom("http://u:p@prometheus.monitoring.svc:9090"), nil); !errors.Is(err, ErrHTTPCredentials) {
		t.Errorf("For(http://u:p@...) = %v, want ErrHTTPCredentials", err)
	}
	if _, err := s.For(tsKey, prom("https://prometheus.monitoring.svc:9090"), &PrometheusAuth{BearerToken: "t"}); err != nil {
		t.Errorf("For(https, a token) = %v", err)
	}
	if _, err := s.For(tsKey, prom("http://prometheus.monitoring.svc:9090"), nil); err != nil {
		t.Errorf("For(http, no credentials) = %v", err)
	}
	allowing := NewSources(SourcesOptions{AllowHTTPCredentials: true})
	if _, err := allowing.For(tsKey, prom("http://prometheus.monitoring.svc:9090"), &PrometheusAuth{BearerToken: "t"}); err != nil {
		t.Errorf("with AllowHTTPCredentials, For(http, a token) = %v", err)
	}
}
