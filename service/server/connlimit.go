package server

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	m "github.com/pacer-dev/pacer/service/metrics"
)

// ConnLimits caps the open API connections, in total and per client (a
// remote IPv4 address, or an IPv6 /64: one host's usual allocation). Zero
// means no cap.
type ConnLimits struct {
	Total, PerClient int
}

// ConnLimiter wraps a listener so that a connection past a cap is closed
// as soon as it is accepted, before net/http reads a byte of it (a refused
// client sees its connection closed, like a full backlog), and counted. Its
// limits can change live; connections already open stay.
type ConnLimiter struct {
	net.Listener
	limits  atomic.Pointer[ConnLimits]
	refused *prometheus.CounterVec

	mu        sync.Mutex
	open      int
	perClient map[netip.Addr]int
}

// LimitConns wraps ln with limits; refused counts the connections closed
// by reason (m.ReasonTotal, m.ReasonPerClient).
func LimitConns(ln net.Listener, limits ConnLimits, refused *prometheus.CounterVec) *ConnLimiter {
	l := &ConnLimiter{Listener: ln, refused: refused, perClient: make(map[netip.Addr]int)}
	l.SetLimits(limits)
	return l
}

// SetLimits applies new caps to the connections accepted from now on.
func (l *ConnLimiter) SetLimits(limits ConnLimits) { l.limits.Store(&limits) }

// Open returns the number of open connections.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Accept returns the next connection within the caps, closing the others.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientOf(c.RemoteAddr())
		if reason := l.admit(client); reason != "" {
			l.refused.WithLabelValues(reason).Inc()
			_ = c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, client: client}, nil
	}
}

// admit counts a connection from client in, or returns why it is refused.
func (l *ConnLimiter) admit(client netip.Addr) string {
	limits := l.limits.Load()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case limits.Total > 0 && l.open >= limits.Total:
		return m.ReasonTotal
	case limits.PerClient > 0 && l.perClient[client] >= limits.PerClient:
		return m.ReasonPerClient
	}
	l.open++
	l.perClient[client]++
	return ""
}

func (l *ConnLimiter) release(client netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perClient[client]--; l.perClient[client] <= 0 {
		delete(l.perClient, client)
	}
}

// clientOf is the key a connection is capped under: its IPv4 address, or
// its IPv6 /64. Anything else (a Unix socket) shares one key.
func clientOf(addr net.Addr) netip.Addr {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	ip, _ := netip.AddrFromSlice(tcp.IP)
	if ip = ip.Unmap(); ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.Addr()
	}
	return ip
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	l      *ConnLimiter
	client netip.Addr
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.l.release(c.client)
	}
	return err
}

// CloseWrite lets net/http half-close the connection (see stallConn).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
