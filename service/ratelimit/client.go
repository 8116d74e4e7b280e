package ratelimit

import (
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIdentifier says who a request comes from.
type ClientIdentifier struct {
	// Header, when set, names a header whose value identifies the client;
	// requests without it fall back to the IP.
	Header string
	// TrustedProxies are the peers whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
}

// ParsePrefixes parses CIDRs (already validated by the config).
func ParsePrefixes(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Client returns the key of r's client.
func (c *ClientIdentifier) Client(r *http.Request) string {
	if c.Header != "" {
		if v := r.Header.Get(c.Header); v != "" {
			return headerKey(v)
		}
	}
	return c.clientIP(r)
}

// headerKey is a fixed-size key for a header value: the client chooses the
// value, and a bucket table keyed on raw values up to the header size limit
// would hold megabytes per client. 128 bits of SHA-256 keep collisions out
// of reach.
func headerKey(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "h:" + hex.EncodeToString(sum[:16])
}

// ipKey is the bucket key of a client address. IPv4 (IPv4-mapped IPv6
// included) is keyed per address; IPv6 per /64, the smallest prefix a site
// is normally given, so one site cannot mint 2^64 buckets and evict
// everyone else's.
func ipKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// clientIP is the remote address, unless the peer is a trusted proxy: then
// it is the right-most X-Forwarded-For address that is not a trusted proxy
// (addresses further left were written by the client and prove nothing).
func (c *ClientIdentifier) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	if !c.trusted(peer) {
		return ipKey(peer)
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			addr, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return ipKey(peer) // a malformed hop: stop trusting the chain
			}
			if !c.trusted(addr) {
				return ipKey(addr)
			}
		}
	}
	return ipKey(peer)
}

func (c *ClientIdentifier) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
