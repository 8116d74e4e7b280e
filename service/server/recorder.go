package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// recorder wraps the ResponseWriter to stamp X-Process-Time just before the
// header goes out and to remember the status and route for metrics.
type recorder struct {
	http.ResponseWriter
	start       time.Time
	status      int
	wroteHeader bool
	route       *routeMetrics
	// clientClosed marks a request whose client left before any answer
	// was written; it is recorded as StatusClientClosedRequest.
	clientClosed bool
}

// StatusClientClosedRequest is recorded, never sent, for a request whose
// client went away before it was answered (nginx's 499).
const StatusClientClosedRequest = 499

// markClientClosed records that w's client left unanswered, if w is the
// recorder.
func markClientClosed(w http.ResponseWriter) {
	if rec, ok := w.(*recorder); ok && !rec.wroteHeader {
		rec.clientClosed = true
	}
}

var recorders = sync.Pool{New: func() any { return new(recorder) }}

func (rec *recorder) WriteHeader(status int) {
	if rec.wroteHeader {
		return
	}
	rec.wroteHeader = true
	rec.status = status
	var buf [24]byte
	elapsed := strconv.AppendFloat(buf[:0], time.Since(rec.start).Seconds(), 'f', 6, 64)
	rec.Header()[headerProcessTime] = []string{string(elapsed)}
	rec.ResponseWriter.WriteHeader(status)
}

func (rec *recorder) Write(b []byte) (int, error) {
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	return rec.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
