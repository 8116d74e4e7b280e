package server

import (
	"net/http"
	"strconv"
	"sync/atomic"

	m "github.com/pacer-dev/pacer/service/metrics"
)

// Held answers: a worker slot pays for database and CPU work, not for
// bytes waiting on a client's socket. While a request holds a slot, its
// answer is kept in memory (writeJSON hands its body over; other writes are
// copied); once the handler returns, the slot is released and only then is
// the answer written, bounded by the write deadline (recorder.go). A client
// that never reads costs its connection and its answer's bytes, not a slot.
//
// Held bytes are bounded twice: one answer holds at most maxHeldAnswer (the
// largest page the API renders, 1,000 users at the longest names and
// emails, is about 1.3 MB), and all answers being written outside the
// worker limit hold at most heldAnswersBudget together. An answer past
// either bound is written from inside its slot, as before, and counted in
// pacer_http_unheld_responses_total; the memory this costs is then bounded
// by the worker limit.
const (
	maxHeldAnswer     = 2 << 20
	heldAnswersBudget = 64 << 20
)

// heldBytes is the budget of bytes held by answers written outside the
// worker limit.
type heldBytes struct{ n atomic.Int64 }

// take reserves size bytes, or reports false if that would pass the budget.
func (h *heldBytes) take(size int) bool {
	if h.n.Add(int64(size)) > heldAnswersBudget {
		h.n.Add(-int64(size))
		return false
	}
	return true
}

func (h *heldBytes) give(size int) { h.n.Add(-int64(size)) }

// hold makes rec keep its answer until flushHeld.
func (rec *recorder) hold() { rec.holding = true }

// holdAnswer keeps status and body (which the caller no longer modifies)
// as the answer, and reports whether it did: false when rec is not
// holding, or when body is too large to hold (then rec writes directly).
func (rec *recorder) holdAnswer(status int, body []byte) bool {
	if !rec.holding || rec.heldStatus != 0 {
		return false
	}
	if len(body) > maxHeldAnswer {
		rec.unhold(m.ReasonTooLarge)
		return false
	}
	rec.heldStatus, rec.heldBody, rec.heldShared = status, body, true
	return true
}

// heldWrite copies b into the held answer, or, when that would pass
// maxHeldAnswer, writes what is held and b directly.
func (rec *recorder) heldWrite(b []byte) (int, error) {
	if rec.heldStatus == 0 {
		rec.heldStatus = http.StatusOK
	}
	if len(rec.heldBody)+len(b) > maxHeldAnswer {
		rec.unhold(m.ReasonTooLarge)
		return rec.Write(b)
	}
	if rec.heldShared { // a handed-over body is never appended to
		rec.heldBody, rec.heldShared = append([]byte(nil), rec.heldBody...), false
	}
	rec.heldBody = append(rec.heldBody, b...)
	return len(b), nil
}

// unhold stops holding: what is held is written now, from inside the slot,
// and counted under reason.
func (rec *recorder) unhold(reason string) {
	if !rec.holding {
		return
	}
	rec.unheld.WithLabelValues(reason).Inc()
	rec.flushHeld()
}

// heldSize is the size of the held answer.
func (rec *recorder) heldSize() int { return len(rec.heldBody) }

// flushHeld writes the held answer, if any, and stops holding.
func (rec *recorder) flushHeld() {
	if !rec.holding {
		return
	}
	rec.holding = false
	status, body := rec.heldStatus, rec.heldBody
	rec.heldStatus, rec.heldBody = 0, nil
	if status == 0 {
		return // nothing written: serveHTTP answers
	}
	h := rec.Header()
	if _, ok := h["Content-Length"]; !ok && len(body) > bufferBeforeChunking {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	rec.WriteHeader(status)
	if len(body) > 0 {
		_, _ = rec.ResponseWriter.Write(body)
	}
}

// FlushError sends what was written so far: a handler that flushes wants
// its bytes out now, so a held answer stops being held and is written from
// inside the slot. (http.ResponseController finds this before Unwrap.)
func (rec *recorder) FlushError() error {
	rec.flushHeld()
	return http.NewResponseController(rec.ResponseWriter).Flush()
}

// dropHeld forgets the held answer (its handler panicked).
func (rec *recorder) dropHeld() {
	rec.holding, rec.heldStatus, rec.heldBody = false, 0, nil
}
