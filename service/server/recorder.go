package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// recorder wraps the ResponseWriter to stamp X-Request-Id and
// X-Process-Time just before the header goes out, to bound how long writing
// the response may take, and to remember the status and route for metrics.
// One is made per request: the header map holds slices of its values array
// until net/http has written the header, after the handler returned.
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
	// conn is the connection's request deadline, nil when the server does
	// not track deadlines (see deadlines.go).
	conn *connDeadline
	// id is the request id: the client's, or made from idNum when first
	// needed (most requests need it only in the header, made with the
	// process time in one allocation).
	id     string
	ids    *requestIDs
	idNum  uint64
	values [2]string // X-Request-Id, X-Process-Time

	// holding keeps the answer (heldStatus, heldBody) until the worker slot
	// is released (held.go); heldShared marks a body handed over by
	// writeJSON, never appended to.
	holding    bool
	heldShared bool
	heldStatus int
	heldBody   []byte
	unheld     *prometheus.CounterVec
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

// deadlineSetter is implemented by net/http's writer (what
// http.ResponseController uses, without its allocation).
type deadlineSetter interface{ SetWriteDeadline(time.Time) error }

func (rec *recorder) WriteHeader(status int) {
	if rec.holding {
		if rec.heldStatus == 0 {
			rec.heldStatus = status
		}
		return
	}
	if rec.wroteHeader {
		return
	}
	rec.wroteHeader = true
	rec.status = status
	now := time.Now()
	h := rec.Header()
	rec.stampHeader(h, now.Sub(rec.start))
	if rec.conn != nil && !rec.conn.disarm() {
		// The request timed out: its connection's context is cancelled.
		h["Connection"] = connectionClose
	}
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

var connectionClose = []string{"close"}

// stampHeader sets X-Request-Id and X-Process-Time (seconds, six decimals)
// with one string allocation.
func (rec *recorder) stampHeader(h http.Header, elapsed time.Duration) {
	var buf [64]byte
	b := buf[:0]
	if rec.id == "" {
		b = rec.ids.append(b, rec.idNum)
	}
	idLen := len(b)
	us := elapsed.Microseconds()
	b = strconv.AppendInt(b, us/1e6, 10)
	frac := us % 1e6
	b = append(b, '.', byte('0'+frac/1e5), byte('0'+frac/1e4%10), byte('0'+frac/1e3%10),
		byte('0'+frac/100%10), byte('0'+frac/10%10), byte('0'+frac%10))
	str := string(b)
	if rec.id == "" {
		rec.id = str[:idLen]
	}
	rec.values = [2]string{rec.id, str[idLen:]}
	h[headerRequestID] = rec.values[0:1:1]
	h[headerProcessTime] = rec.values[1:2:2]
}

// requestID is the request's id, made now if it was not yet.
func (rec *recorder) requestID() string {
	if rec.id == "" {
		rec.id = string(rec.ids.append(nil, rec.idNum))
	}
	return rec.id
}

func (rec *recorder) Write(b []byte) (int, error) {
	if rec.holding {
		return rec.heldWrite(b)
	}
	if !rec.wroteHeader {
		rec.WriteHeader(http.StatusOK)
	}
	return rec.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (rec *recorder) Unwrap() http.ResponseWriter { return rec.ResponseWriter }
