package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Every address a tenant's name could resolve to inside a cluster's or a
// cloud's private networks is refused at dial time, IPv4 and IPv6 alike,
// IPv4-mapped and NAT64 forms included; an --metrics-allow-cidr range is
// dialled.
func TestDialPolicy(t *testing.T) {
	t.Parallel()
	p, err := ParseEndpointPolicy(DefaultAllowedEndpoints)
	if err != nil {
		t.Fatal(err)
	}
	p, err = p.WithDialAllowed([]string{"10.96.0.0/12", "fd00:10:96::/112"})
	if err != nil {
		t.Fatal(err)
	}
	for addr, allowed := range map[string]bool{
		"127.0.0.1":              false,
		"127.77.2.1":             false,
		"::1":                    false,
		"::ffff:127.0.0.1":       false,
		"10.0.0.5":               false,
		"10.96.0.10":             true, // the Service CIDR allowed
		"172.16.3.4":             false,
		"192.168.1.1":            false,
		"100.64.0.1":             false, // carrier-grade NAT
		"100.127.255.254":        false,
		"169.254.169.254":        false, // cloud metadata
		"::ffff:169.254.169.254": false,
		"fd00:ec2::254":          false, // AWS metadata over IPv6
		"fd00:10:96::a":          true,
		"fc00::1":                false,
		"fe80::1":                false,
		"64:ff9b::a9fe:a9fe":     false, // NAT64 of 169.254.169.254
		"::a9fe:a9fe":            false, // IPv4-compatible
		"0.0.0.0":                false,
		"::":                     false,
		"224.0.0.1":              false,
		"ff02::1":                false,
		"255.255.255.255":        false,
		"198.18.0.1":             false,
		"93.184.216.34":          true, // public
		"2606:2800:220:1::1":     true,
	} {
		addrPort := netip.AddrPortFrom(netip.MustParseAddr(addr), 9090).String()
		if got := p.control("tcp", addrPort, nil) == nil; got != allowed {
			t.Errorf("dial %s allowed = %v, want %v", addrPort, got, allowed)
		}
	}
	if _, err := p.WithDialAllowed([]string{"not a cidr"}); err == nil {
		t.Error("WithDialAllowed(not a cidr): no error")
	}
}

// The Pods source dials pod IPs the API server reported, which live in
// private ranges (and, in the dev cluster, on loopback); it still never
// dials a link-local (metadata), unspecified, multicast or NAT64 address.
func TestPodDialPolicy(t *testing.T) {
	t.Parallel()
	for addr, allowed := range map[string]bool{
		"10.244.1.7":             true,
		"100.64.3.2":             true,
		"fd00:10:244::7":         true,
		"127.77.2.1":             true,
		"169.254.169.254":        false,
		"::ffff:169.254.169.254": false,
		"fd00:ec2::254":          false,
		"fe80::1":                false,
		"64:ff9b::a9fe:a9fe":     false,
		"0.0.0.0":                false,
		"224.0.0.1":              false,
	} {
		addrPort := netip.AddrPortFrom(netip.MustParseAddr(addr), 9090).String()
		if got := podDialControl("tcp", addrPort, nil) == nil; got != allowed {
			t.Errorf("pod dial %s allowed = %v, want %v", addrPort, got, allowed)
		}
	}
	p := NewPods(PodsOptions{Timeout: 2 * time.Second})
	w, err := p.Observe(context.Background(), Target{Namespace: "ns", Name: "svc", Interval: time.Minute,
		Pods: []Pod{{Name: "p", Host: "169.254.169.254"}}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Sufficient || !strings.Contains(w.Reason, "not allowed") {
		t.Errorf("Reason %q, want the metadata address not allowed", w.Reason)
	}
}

// Every way an allowed Prometheus URL can fail reads the same in status: a
// name that resolves to a refused address, a closed port, a timeout, an
// error answer, a redirect, a bad answer. Only the operator's log tells
// them apart.
func TestPrometheusFailuresLookAlike(t *testing.T) {
	t.Parallel()
	closed := newAcceptCounter(t)
	closedAddr := closed.ln.Addr().String()
	closed.ln.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leave
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"internal","error":"secret-xyz"}`))
	}))
	t.Cleanup(failing.Close)
	redirect := httptest.NewServer(http.RedirectHandler("http://example.com/", http.StatusFound))
	t.Cleanup(redirect.Close)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"vector","result":[null]}}`))
	}))
	t.Cleanup(garbage.Close)

	// localhost is an allowed name, but it resolves to loopback, which is
	// not; the test servers are allowed by their IP literals.
	names, err := ParseEndpointPolicy([]string{"localhost"})
	if err != nil {
		t.Fatal(err)
	}
	byName := NewSources(SourcesOptions{Endpoints: names})
	s := loopbackSources(t, SourcesOptions{Prometheus: PrometheusOptions{Timeout: time.Second}})
	_, port, _ := net.SplitHostPort(hang.Listener.Addr().String())
	var messages []string
	for _, url := range []string{
		"http://localhost:" + port, "http://" + closedAddr, hang.URL, failing.URL, redirect.URL, garbage.URL,
	} {
		src := s
		if strings.Contains(url, "localhost") {
			src = byName
		}
		err := observeVia(t, src, url, nil)
		if err == nil {
			t.Fatalf("%s: no error", url)
		}
		messages = append(messages, err.Error())
	}
	for i, msg := range messages {
		if msg != messages[0] {
			t.Errorf("failure %d reads %q, failure 0 %q: want one message for all", i, msg, messages[0])
		}
		for _, leak := range []string{"127.0.0.1", port, "secret-xyz", "redirect", "refused", "time", "null"} {
			if strings.Contains(msg, leak) {
				t.Errorf("failure %d %q gives away %q", i, msg, leak)
			}
		}
	}
	// The cause is kept for the log (and this test).
	if err := observeVia(t, byName, "http://localhost:"+port, nil); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("the dial refusal's cause: %v, want ErrNotAllowed", err)
	}
}
