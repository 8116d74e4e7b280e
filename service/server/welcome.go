package server

import (
	"net/http"
)

var acceptedBody = []byte(`{"status":"queued"}`)

// welcomeUser stores the welcome job (the email stand-in) for an existing
// user. 202 means the job is committed in the outbox: it runs even if this
// pod stops right after answering.
func (s *server) welcomeUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Jobs.Welcome(ctx, id); err != nil {
		s.fail(w, r, contextError(ctx, err))
		return
	}
	writeJSON(w, http.StatusAccepted, acceptedBody)
}
