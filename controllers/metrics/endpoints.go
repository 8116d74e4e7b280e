package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// DefaultAllowedEndpoints are the Prometheus servers a TunedService may
// name unless the operator is told otherwise: in-cluster Services only.
var DefaultAllowedEndpoints = []string{"*.svc", "*.svc.cluster.local"}

// ErrNotAllowed is the whole answer to a Prometheus URL outside the
// operator's allow-list: which part failed, or what a dial would have
// found, is nothing a TunedService's author needs.
var ErrNotAllowed = errors.New("prometheusURL is not allowed by the operator's --prometheus-endpoints")

// EndpointPolicy says which Prometheus servers TunedServices may make the
// operator fetch. A URL's host must match a host pattern, or be an IP in
// one of the CIDRs. The address actually dialled is checked again after
// name resolution, so a name cannot lead (by DNS rebinding or an
// ExternalName Service) to loopback, link-local (cloud metadata) or
// unspecified addresses, unless a CIDR allows them.
type EndpointPolicy struct {
	hosts []string // "name" or "*.suffix", lower case
	cidrs []netip.Prefix
}

// ParseEndpointPolicy reads allow-list items: CIDRs ("10.0.0.0/8",
// "192.0.2.7/32") and host patterns ("prometheus.example.com", "*.svc",
// where *. matches one or more leading labels).
func ParseEndpointPolicy(items []string) (*EndpointPolicy, error) {
	p := &EndpointPolicy{}
	for _, item := range items {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			continue
		}
		if prefix, err := netip.ParsePrefix(item); err == nil {
			p.cidrs = append(p.cidrs, prefix.Masked())
			continue
		}
		name := strings.TrimPrefix(item, "*.")
		if name == "" || strings.ContainsAny(name, "*/:@ ") || strings.Contains(name, "..") {
			return nil, fmt.Errorf("metrics: Prometheus endpoint %q is neither a CIDR nor a host pattern such as *.svc", item)
		}
		p.hosts = append(p.hosts, item)
	}
	return p, nil
}

// Check reports ErrNotAllowed unless raw is an http(s) URL to an allowed host.
func (p *EndpointPolicy) Check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return ErrNotAllowed
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if p.inCIDRs(ip) {
			return nil
		}
		return ErrNotAllowed
	}
	for _, pat := range p.hosts {
		if suffix, ok := strings.CutPrefix(pat, "*"); ok {
			if strings.HasSuffix(host, suffix) && len(host) > len(suffix) {
				return nil
			}
		} else if host == pat {
			return nil
		}
	}
	return ErrNotAllowed
}

func (p *EndpointPolicy) inCIDRs(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, c := range p.cidrs {
		if c.Contains(ip) {
			return true
		}
	}
	return false
}

// control runs after name resolution, before each connection is made.
func (p *EndpointPolicy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return ErrNotAllowed
	}
	ip := ap.Addr().Unmap()
	if p.inCIDRs(ip) {
		return nil
	}
	if ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsUnspecified() || ip.IsMulticast() || ip.IsInterfaceLocalMulticast() {
		return ErrNotAllowed
	}
	return nil
}

// DialContext dials only addresses the policy allows.
func (p *EndpointPolicy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: p.control}
	return d.DialContext(ctx, network, addr)
}
