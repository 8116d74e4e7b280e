package server

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	m "github.com/pacer-dev/pacer/service/metrics"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// Issue 20, idle connections: nothing capped the connections overall or
// per client. Now one past a cap is closed at accept and counted, and a
// closed connection gives its place back.
func TestConnectionCaps(t *testing.T) {
	x := telemetry.New()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitConns(raw, ConnLimits{Total: 3, PerClient: 2}, x.RefusedConns)
	defer ln.Close()
	accepted := make(chan net.Conn, 8)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", raw.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// refusedAt reports whether the server closed c (a read sees EOF).
	closedByServer := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !isTimeout(err)
	}
	refused := func(reason string) float64 { return testutil.ToFloat64(x.RefusedConns.WithLabelValues(reason)) }

	dial("127.0.0.1")
	dial("127.0.0.1")
	first := <-accepted
	<-accepted
	if third := dial("127.0.0.1"); !closedByServer(third) || refused(m.ReasonPerClient) != 1 {
		t.Fatalf("a client's third connection: refused %v, want closed and counted", refused(m.ReasonPerClient))
	}
	dial("127.0.0.2") // another client still gets in
	<-accepted
	if fourth := dial("127.0.0.3"); !closedByServer(fourth) || refused(m.ReasonTotal) != 1 {
		t.Fatalf("a connection past the total: refused %v, want closed and counted", refused(m.ReasonTotal))
	}
	// Closing one of the first client's connections gives its place back,
	// once however often it is closed.
	first.Close()
	first.Close()
	if ln.Open() != 2 {
		t.Fatalf("open = %d after a close, want 2", ln.Open())
	}
	dial("127.0.0.1")
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("a connection within the caps was not accepted")
	}
}

func TestClientOfGroupsIPv6By64(t *testing.T) {
	key := func(ip string) string { return clientOf(&net.TCPAddr{IP: net.ParseIP(ip)}).String() }
	if a, b := key("2001:db8::1"), key("2001:db8::ffff:1"); a != b {
		t.Errorf("one /64: %s and %s", a, b)
	}
	if a, b := key("2001:db8:0:1::1"), key("2001:db8::1"); a == b {
		t.Errorf("two /64s share the key %s", a)
	}
	if got := key("::ffff:10.0.0.1"); got != "10.0.0.1" {
		t.Errorf("an IPv4-mapped address keys as %s, want 10.0.0.1", got)
	}
}
