package server

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"
)

// BenchmarkSweepIdleConnections is one sweep over open connections of
// which only armed have a request in flight: the sweeper's cost on a pod
// holding many idle keep-alive connections.
func BenchmarkSweepIdleConnections(b *testing.B) {
	for _, open := range []int{100, 10_000} {
		for _, armed := range []int{0, 10} {
			b.Run("open="+strconv.Itoa(open)+"/armed="+strconv.Itoa(armed), func(b *testing.B) {
				d := NewRequestDeadlines()
				d.sweeping = true // no background sweeper: the benchmark sweeps
				conns := make([]*connDeadline, open)
				for i := range conns {
					ctx := d.open(context.Background(), &benchConn{})
					conns[i] = ctx.Value(connDeadlineKey{}).(*connDeadline)
				}
				for _, cd := range conns[:armed] {
					cd.arm(time.Now(), time.Hour)
				}
				var watched, late []*connDeadline
				b.ResetTimer()
				for range b.N {
					watched, late, _ = d.sweepOnce(monotonic(time.Now()), watched, late[:0])
				}
			})
		}
	}
}

// benchConn is a distinct net.Conn that does nothing.
type benchConn struct{ net.Conn }

func (*benchConn) SetReadDeadline(time.Time) error { return nil }
