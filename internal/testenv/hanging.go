package testenv

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Hanging is a listener that accepts connections and never answers, as a
// pod whose /metrics hangs does. It counts the connections accepted and
// those its peer has not closed yet (scrapes still outstanding).
type Hanging struct {
	net.Listener
	// Accepted receives a value (without blocking) on every accept.
	Accepted chan struct{}

	mu           sync.Mutex
	total, alive int
	conns        []net.Conn
}

// ListenHanging listens on addr ("127.0.0.1:0" for any loopback port) until
// the test ends, then closes every connection it holds.
func ListenHanging(t testing.TB, addr string) *Hanging {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	h := &Hanging{Listener: ln, Accepted: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			h.mu.Lock()
			h.total++
			h.alive++
			h.conns = append(h.conns, c)
			h.mu.Unlock()
			select {
			case h.Accepted <- struct{}{}:
			default:
			}
			wg.Go(func() {
				_, _ = io.Copy(io.Discard, c) // until the peer gives up
				_ = c.Close()
				h.mu.Lock()
				h.alive--
				h.mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		h.mu.Lock()
		for _, c := range h.conns {
			_ = c.Close()
		}
		h.mu.Unlock()
		wg.Wait()
	})
	return h
}

// Open is the number of connections the peer has not closed.
func (h *Hanging) Open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.alive
}

// Total is the number of connections accepted.
func (h *Hanging) Total() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.total
}
