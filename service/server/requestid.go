package server

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"
)

const (
	headerRequestID   = "X-Request-Id"
	headerProcessTime = "X-Process-Time"
	maxRequestIDLen   = 128
)

// requestIDs makes ids unique across processes (a random prefix chosen at
// start) and cheap per request (a counter, no randomness).
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &requestIDs{prefix: hex.EncodeToString(b) + "-"}
}

// next returns a new id's number; append spells it.
func (g *requestIDs) next() uint64 { return g.n.Add(1) }

// append appends the id numbered n to b.
func (g *requestIDs) append(b []byte, n uint64) []byte {
	return strconv.AppendUint(append(b, g.prefix...), n, 36)
}

// validRequestID accepts a client's id only if it is short printable ASCII,
// so it is safe to echo in headers and logs.
func validRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
