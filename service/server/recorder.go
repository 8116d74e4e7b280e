package server

import (
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"
)

// recorder wraps the ResponseWriter to stamp X-Process-Time just before the
// header goes out, to bound how long writing the response may take, and to
// remember the status and route for metrics.
type recorder struct {
	http.ResponseWriter
	start       time.Time
	status      int
	wroteHeader bool
	route       *routeMetrics
	// clientClosed marks a request whose client left before any answer
	// was written; it is recorded as StatusClientClosedRequest.
	clientClosed bool
	// writeGrace is the base of the write deadline (the request timeout).
	writeGrace time.Duration
	// stalled marks a response the client did not read in time.
	stalled bool
}

// StatusClientClosedRequest is recorded, never sent, for a request whose
// client went away before it was answered (nginx's 499).
const StatusClientClosedRequest = 499

// minClientReadRate is the slowest a client may read a response: the write
// deadline is the request timeout plus the body's size at this rate. A
// client that reads slower (or pipelines requests and never reads) is cut
// off, so it cannot hold a worker slot or a connection forever.
const minClientReadRate = 64 << 10 // bytes per second

// writeDeadline is when writing a response of size bytes must be done.
func writeDeadline(now time.Time, grace time.Duration, size int) time.Time {
	return now.Add(grace + time.Duration(size)*time.Second/minClientReadRate)
}

// markClientClosed records that w's client left unanswered, if w is the
// recorder.
func markClientClosed(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok && !rec.wroteHeader {
		rec.clientClosed = true
	}
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

// deadlineSetter and errorFlusher are implemented by net/http's writer
// (what http.ResponseController uses, without its allocation).
type (
	deadlineSetter interface{ SetWriteDeadline(time.Time) error }
	errorFlusher   interface{ FlushError() error }
)

func (rec *recorder) WriteHeader(status int) {
	if rec.wroteHeader {
		return
	}
	rec.wroteHeader = true
	rec.status = status
	now := time.Now()
	var buf [24]byte
	elapsed := strconv.AppendFloat(buf[:0], now.Sub(rec.start).Seconds(), 'f', 6, 64)
	h := rec.Header()
	h[headerProcessTime] = []string{string(elapsed)}
	if ds, ok := rec.ResponseWriter.(deadlineSetter); ok {
		size := 0
		if cl := h["Content-Length"]; len(cl) == 1 {
			size, _ = strconv.Atoi(cl[0])
		}
		// Set on every response, so a keep-alive connection's next answer
		// never inherits an expired deadline.
		_ = ds.SetWriteDeadline(writeDeadline(now, rec.writeGrace, size))
	}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	n, err := rec.ResponseWriter.Write(b)
	if err != nil && isTimeout(err) {
		rec.stalled = true
	}
	return n, err
}

// flush sends what is buffered while the write deadline holds, so that a
// stall on a small response is seen (and counted) here rather than in
// net/http after the handler.
func (rec *recorder) flush() {
	if rec.stalled || !rec.wroteHeader {
		return
	}
	if f, ok := rec.ResponseWriter.(errorFlusher); ok {
		if err := f.FlushError(); err != nil && isTimeout(err) {
			rec.stalled = true
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
