package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
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
// name resolution, so a name cannot lead (by DNS rebinding, an
// ExternalName Service or any tenant's Service) to an address in
// deniedRanges (private, loopback, link-local and metadata, CGNAT, ...)
// unless one of the CIDRs or a dial-allowed CIDR (WithDialAllowed: the
// cluster's Service CIDR, usually) admits it.
type EndpointPolicy struct {
	hosts []string // "name" or "*.suffix", lower case
	cidrs []netip.Prefix
	// dialAllowed admit dialled addresses, not URL hosts.
	dialAllowed []netip.Prefix
}

// deniedRanges are never dialled for a Prometheus URL unless a CIDR allows
// them: every range a name could lead to inside the cluster's, the node's
// or the cloud's own networks. IPv4-mapped IPv6 addresses are checked as
// IPv4; NAT64 and IPv4-compatible forms are denied whole.
var deniedRanges = prefixes(
	"0.0.0.0/8",      // "this network", unspecified
	"10.0.0.0/8",     // private use (RFC 1918)
	"100.64.0.0/10",  // carrier-grade NAT (RFC 6598)
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local, cloud metadata (169.254.169.254)
	"172.16.0.0/12",  // private use
	"192.0.0.0/24",   // IETF protocol assignments
	"192.168.0.0/16", // private use
	"198.18.0.0/15",  // benchmarking
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved, broadcast
	"::/96",          // unspecified, loopback, IPv4-compatible
	"64:ff9b::/96",   // NAT64 (RFC 6052)
	"64:ff9b:1::/48", // local-use NAT64 (RFC 8215)
	"fc00::/7",       // unique local, cloud metadata (fd00:ec2::254)
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
	"ff00::/8",       // multicast
)

// podDeniedRanges are never dialled for a pod scrape: no pod has such an
// address. Pod IPs are private (or, in the dev cluster, loopback), and the
// operator reads them from the API server, so private ranges stay allowed.
var podDeniedRanges = prefixes(
	"0.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
	"::/128", "64:ff9b::/96", "64:ff9b:1::/48", "fd00:ec2::254/128", "fe80::/10", "ff00::/8",
)

func prefixes(cidrs ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(cidrs))
	for i, c := range cidrs {
		out[i] = netip.MustParsePrefix(c)
	}
	return out
}

func contains(ranges []netip.Prefix, ip netip.Addr) bool {
	for _, r := range ranges {
		if r.Contains(ip) {
			return true
		}
	}
	return false
}

// WithDialAllowed returns a copy of p that also dials addresses in cidrs
// (--metrics-allow-cidr), such as the cluster's Service CIDR, where a
// Prometheus Service's ClusterIP lies.
func (p *EndpointPolicy) WithDialAllowed(cidrs []string) (*EndpointPolicy, error) {
	q := *p
	q.dialAllowed = slices.Clone(p.dialAllowed)
	for _, c := range cidrs {
		prefix, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("metrics: %q is not a CIDR", c)
		}
		q.dialAllowed = append(q.dialAllowed, prefix.Masked())
	}
	return &q, nil
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
	if p.inCIDRs(ip) || contains(p.dialAllowed, ip) {
		return nil
	}
	if contains(deniedRanges, ip) {
		return ErrNotAllowed
	}
	return nil
}

// podDialControl is control for pod scrapes.
func podDialControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || contains(podDeniedRanges, ap.Addr().Unmap()) {
		return ErrNotAllowed
	}
	return nil
}

// DialContext dials only addresses the policy allows.
func (p *EndpointPolicy) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: p.control}
	return d.DialContext(ctx, network, addr)
}
