package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

func TestEndpointPolicyCheck(t *testing.T) {
	t.Parallel()
	p, err := ParseEndpointPolicy(append([]string{"10.0.0.0/8", "prometheus.example.com", "fd00::/8"}, DefaultAllowedEndpoints...))
	if err != nil {
		t.Fatal(err)
	}
	for url, allowed := range map[string]bool{
		"http://prometheus.monitoring.svc:9090":               true,
		"https://prometheus.monitoring.svc.cluster.local":     true,
		"http://PROMETHEUS.Monitoring.SVC:9090":               true,
		"http://prometheus.example.com":                       true,
		"http://10.1.2.3:9090":                                true,
		"http://[fd00::1]:9090":                               true,
		"http://svc":                                          false,
		"http://evil.svc.example.com":                         false,
		"http://sub.prometheus.example.com":                   false,
		"http://127.0.0.1:9090":                               false,
		"http://169.254.169.254/latest/meta-data":             false,
		"http://[::1]:9090":                                   false,
		"http://[::ffff:127.0.0.1]:9090":                      false,
		"ftp://prometheus.monitoring.svc":                     false,
		"http://user@127.0.0.1@prometheus.monitoring.svc:90x": false,
		"not a url": false,
	} {
		if got := p.Check(url) == nil; got != allowed {
			t.Errorf("Check(%q) allowed = %v, want %v", url, got, allowed)
		}
	}
	for _, bad := range []string{"*", "*.", "a/b", "host:9090", "a..b"} {
		if _, err := ParseEndpointPolicy([]string{bad}); err == nil {
			t.Errorf("ParseEndpointPolicy(%q): no error", bad)
		}
	}
}

// acceptCounter is a loopback listener that counts the connections made to it.
type acceptCounter struct {
	ln net.Listener
	mu sync.Mutex
	n  int
}

func newAcceptCounter(t *testing.T) *acceptCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptCounter{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.mu.Lock()
			a.n++
			a.mu.Unlock()
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return a
}

// count is the number of connections made before this call, found after
// one more connection (the call's own) is accepted.
func (a *acceptCounter) count(t *testing.T) int {
	t.Helper()
	c, err := net.Dial("tcp", a.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	for {
		a.mu.Lock()
		n := a.n
		a.mu.Unlock()
		if n > 0 {
			// Connections are accepted in order; ours is the last one.
			return n - 1
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tsKey is the TunedService the tests' sources observe for.
var tsKey = types.NamespacedName{Namespace: "ns", Name: "svc"}

var target = Target{Namespace: "ns", Name: "svc", Pods: []Pod{{Name: "p"}}, Interval: time.Minute}

func observeVia(t *testing.T, s *Sources, url string, auth *PrometheusAuth) error {
	t.Helper()
	src, err := s.For(tsKey, pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus, PrometheusURL: url}, auth)
	if err != nil {
		return err
	}
	_, err = src.Observe(context.Background(), target)
	return err
}

// A Prometheus URL outside the allow-list is never dialled, whether it is
// refused by its host (an IP) or, after resolution, by its address (a name
// that resolves to loopback); the error says "not allowed" and no more.
func TestDisallowedPrometheusIsNeverDialled(t *testing.T) {
	t.Parallel()
	listener := newAcceptCounter(t)
	port := listener.ln.Addr().(*net.TCPAddr).AddrPort().Port()
	byIP := "http://127.0.0.1:" + strconv.Itoa(int(port))
	byName := "http://localhost:" + strconv.Itoa(int(port))

	err := observeVia(t, NewSources(SourcesOptions{}), byIP, nil)
	if !errors.Is(err, ErrNotAllowed) || err.Error() != ErrNotAllowed.Error() {
		t.Errorf("default policy, %s: err = %v, want exactly ErrNotAllowed", byIP, err)
	}

	names, err := ParseEndpointPolicy([]string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	err = observeVia(t, NewSources(SourcesOptions{Endpoints: names}), byName, nil)
	if !errors.Is(err, ErrNotAllowed) || err.Error() != errQueryFailed {
		t.Errorf("a name resolving to loopback: err = %v, want the one failure message, caused by ErrNotAllowed", err)
	}
	for _, leak := range []string{strconv.Itoa(int(port)), "127.0.0.1", "dial", "refused", "connect"} {
		if err != nil && strings.Contains(err.Error(), leak) {
			t.Errorf("error %q gives away %q", err, leak)
		}
	}
	if n := listener.count(t); n != 0 {
		t.Errorf("the disallowed listener was dialled %d times", n)
	}
}

// An allowed Prometheus that redirects is not followed, and its errors
// reach status without its body or address.
func TestAllowedPrometheusRedirectsAndErrors(t *testing.T) {
	t.Parallel()
	elsewhere := newAcceptCounter(t)
	redirect := httptest.NewServer(http.RedirectHandler("http://"+elsewhere.ln.Addr().String()+"/api/v1/query", http.StatusFound))
	t.Cleanup(redirect.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"internal","error":"secret internal detail at 10.9.8.7"}`))
	}))
	t.Cleanup(failing.Close)

	loopback, err := ParseEndpointPolicy([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSources(SourcesOptions{Endpoints: loopback})
	if err := observeVia(t, s, redirect.URL, nil); !errors.Is(err, errRedirect) {
		t.Errorf("redirect: err = %v, want a refused redirect", err)
	}
	if n := elsewhere.count(t); n != 0 {
		t.Errorf("the redirect was followed (%d connections)", n)
	}
	err = observeVia(t, s, failing.URL, nil)
	if err == nil || strings.Contains(err.Error(), "10.9.8.7") || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("a failing Prometheus: err = %v, want one without its body or address", err)
	}
}

// Credentials from the Secret reach Prometheus as the headers it expects.
func TestPrometheusCredentials(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[]}}`))
	}))
	t.Cleanup(srv.Close)
	loopback, err := ParseEndpointPolicy([]string{"127.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	s := NewSources(SourcesOptions{Endpoints: loopback, AllowHTTPCredentials: true}) // a test server speaks http
	for _, auth := range []*PrometheusAuth{{BearerToken: "tok"}, {Username: "u", Password: "p"}} {
		if err := observeVia(t, s, srv.URL, auth); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"Bearer tok", "Basic dTpw"}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization headers %q, want %q", got, want)
	}
	if _, err := s.For(tsKey, pacerv1.MetricsSpec{Source: pacerv1.MetricsFromPrometheus, PrometheusURL: srv.URL},
		&PrometheusAuth{CA: []byte("not PEM")}); err == nil {
		t.Error("a CA bundle without a certificate: no error")
	}
}
