package server

import (
	"net"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// CountStalls wraps ln so that a connection whose write fails at its write
// deadline (the client stopped reading: recorder.go sets the deadline) is
// counted once in stalls. Counting at the connection sees every stall,
// including one in the last write net/http makes after the handler
// returned, without the handler flushing its answer early.
func CountStalls(ln net.Listener, stalls prometheus.Counter) net.Listener {
	return stallListener{Listener: ln, stalls: stalls}
}

type stallListener struct {
	net.Listener
	stalls prometheus.Counter
}

func (l stallListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &stallConn{Conn: c, stalls: l.stalls}, nil
}

type stallConn struct {
	net.Conn
	stalls  prometheus.Counter
	stalled atomic.Bool
}

func (c *stallConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if err != nil && isTimeout(err) && c.stalled.CompareAndSwap(false, true) {
		c.stalls.Inc()
	}
	return n, err
}

// CloseWrite lets net/http half-close the connection as it would the TCP
// connection underneath (so a client sending a too-large body reads the
// answer instead of a reset).
func (c *stallConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
