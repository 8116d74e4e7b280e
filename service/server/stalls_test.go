package server

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A write cut off at its deadline counts once per connection, however many
// writes then fail; other errors do not count.
func TestCountStallsOncePerConnection(t *testing.T) {
	stalls := prometheus.NewCounter(prometheus.CounterOpts{Name: "stalls"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln = CountStalls(ln, stalls)
	defer ln.Close()
	for range 2 { // two connections whose client never reads
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		chunk := make([]byte, 1<<20)
		for i := 0; i < 64; i++ { // at most 64 MiB: far past any socket buffer
			if _, err := conn.Write(chunk); err != nil {
				break
			}
		}
		_, _ = conn.Write(chunk) // fails again, at once
		conn.Close()
		if _, err := conn.Write(chunk); err == nil { // closed: not a stall
			t.Fatal("write on a closed connection succeeded")
		}
	}
	if got := testutil.ToFloat64(stalls); got != 2 {
		t.Fatalf("stalls = %v, want one per stalled connection (2)", got)
	}
}
