package server

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/pacer-dev/pacer/service/cache"
	"github.com/pacer-dev/pacer/service/store"
)

// Error codes in the body of error responses.
const (
	codeInvalidJSON         = "invalid_json"
	codeInvalidParam        = "invalid_parameter"
	codeValidation          = "validation_failed"
	codeNotFound            = "not_found"
	codeDuplicateEmail      = "duplicate_email"
	codeWriteConflict       = "write_conflict"
	codeBodyTooLarge        = "body_too_large"
	codeBodyTimeout         = "body_timeout"
	codeRateLimited         = "rate_limited"
	codeOverloaded          = "overloaded"
	codeDatabaseUnavailable = "database_unavailable"
	codeStarting            = "starting"
	codeTimeout             = "timeout"
	codeInternal            = "internal"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Index names the bad item of a batch.
	Index *int `json:"index,omitempty"`
}

// apiError is an error with its HTTP status, code and client-facing message.
type apiError struct {
	status  int
	code    string
	message string
	index   *int
	// retryAfter, in seconds, is sent as Retry-After when > 0.
	retryAfter int
}

func (e *apiError) Error() string { return e.message }

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeAPIError(w, &apiError{status: status, code: code, message: message})
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
	body, _ := json.Marshal(errorBody{Error: errorDetail{Code: e.code, Message: e.message, Index: e.index}})
	writeJSON(w, e.status, body)
}

// fail writes the response for err, logging what the client is not told.
func (s *server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeAPIError(w, ae)
		return
	}
	var panicked *cache.ErrFillPanicked
	if errors.As(err, &panicked) {
		s.Metrics.Panics.Inc()
		s.Logger.Error("cache fill panicked", "panic", panicked.Value, "stack", string(panicked.Stack),
			"request_id", requestID(w), "method", r.Method, "path", r.URL.Path)
	}
	if clientGone(r) {
		// The client gave up (its connection closed) while the database
		// worked: nobody reads an answer, and the failure is its, not the
		// server's. Record 499 so the tuner never reads it as a 5xx.
		markClientClosed(w)
		s.Logger.Debug("client closed request", "status", StatusClientClosedRequest, "err", err,
			"request_id", requestID(w), "method", r.Method, "path", r.URL.Path)
		return
	}
	var be *store.BatchError
	switch {
	case panicked != nil:
		writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
	case errors.As(err, &be) && errors.Is(err, store.ErrDuplicateEmail):
		i := be.Index
		writeAPIError(w, &apiError{status: http.StatusConflict, code: codeDuplicateEmail,
			message: "users[" + strconv.Itoa(i) + "].email: email already in use; nothing was created", index: &i})
	case errors.As(err, &be) && errors.Is(err, store.ErrInvalidText):
		i := be.Index
		writeAPIError(w, &apiError{status: http.StatusUnprocessableEntity, code: codeValidation,
			message: "users[" + strconv.Itoa(i) + "]: " + store.ErrInvalidText.Error() + "; nothing was created", index: &i})
	case errors.Is(err, store.ErrInvalidText):
		writeError(w, http.StatusUnprocessableEntity, codeValidation, store.ErrInvalidText.Error())
	case errors.Is(err, store.ErrConflict):
		writeAPIError(w, &apiError{status: http.StatusConflict, code: codeWriteConflict,
			message: "the write conflicted with a concurrent one and was rolled back; nothing was written, retry", retryAfter: 1})
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, codeNotFound, "user not found")
	case errors.Is(err, store.ErrDuplicateEmail):
		writeError(w, http.StatusConflict, codeDuplicateEmail, "email already in use")
	case errors.Is(err, cache.ErrFillsBusy):
		writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, code: codeOverloaded,
			message: "server overloaded: too many cache misses waiting for the database, retry later", retryAfter: 1})
	case errors.Is(err, store.ErrTimeout):
		writeError(w, http.StatusGatewayTimeout, codeTimeout, "request timed out")
	case errors.Is(err, store.ErrUnavailable):
		// Every request fails alike during an outage: one line a second says it.
		s.outageLog.Do(func() {
			s.Logger.Warn("database unavailable; answering 503", "err", err, "request_id", requestID(w))
		})
		writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, code: codeDatabaseUnavailable,
			message: "database unavailable, retry later", retryAfter: 1})
	default:
		s.Logger.Error("request failed", "err", err, "request_id", requestID(w),
			"method", r.Method, "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, codeInternal, "internal error")
	}
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h["Content-Type"] = contentTypeJSON
	if len(body) > bufferBeforeChunking {
		// Otherwise net/http sets Content-Length itself (without a header
		// map entry) once the handler returns with the body buffered.
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	if rec, ok := w.(*recorder); ok && rec.holdAnswer(status, body) {
		return // written once the worker slot is released
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// bufferBeforeChunking is net/http's bufferBeforeChunkingSize: a body
// larger than this goes out while the handler runs, so it needs a
// Content-Length set beforehand or it is sent chunked.
const bufferBeforeChunking = 2048

var contentTypeJSON = []string{"application/json"}
