package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/pacer-dev/pacer/service/jobs"
)

var acceptedBody = []byte(`{"status":"queued"}`)

// welcomeUser queues the welcome email stand-in for an existing user.
func (s *server) welcomeUser(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := s.requestContext(r)
	defer cancel()
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if _, err := s.Users.Get(ctx, id); err != nil {
		s.fail(w, r, err)
		return
	}
	err = s.Jobs.Enqueue(func(ctx context.Context) error {
		// The stand-in for sending an email: record that it was sent.
		return s.Users.MarkWelcomed(ctx, id)
	})
	if errors.Is(err, jobs.ErrQueueFull) || errors.Is(err, jobs.ErrStopped) {
		writeAPIError(w, &apiError{status: http.StatusServiceUnavailable, code: codeOverloaded,
			message: err.Error(), retryAfter: 1})
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedBody)
}
