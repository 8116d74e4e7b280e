package server

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/pacer-dev/pacer/service/cache"
	"github.com/pacer-dev/pacer/service/store"
)

func pathID(r *http.Request) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id < 1 {
		return 0, &apiError{status: http.StatusBadRequest, code: codeInvalidParam,
			message: "id: must be a positive integer, got " + strconv.Quote(r.PathValue("id"))}
	}
	return id, nil
}

func entryOf(u store.User) (cache.Entry, error) {
	return cache.Entry{Version: u.Version, Body: appendUser(make([]byte, 0, 192), u)}, nil
}

// headerCache says where GET /v1/users/{id} was answered from: "hit" from
// the pod's in-process cache, "miss" from Redis or PostgreSQL. It is not
// sent while the cache is off.
const headerCache = "X-Cache"

var (
	cacheHitValue  = []string{"hit"}
	cacheMissValue = []string{"miss"}
)

// cachedUser is getUser's fast path, run without a worker slot: it answers
// only an in-process hit (nothing waits, so nothing can time out).
func (s *server) cachedUser(w http.ResponseWriter, r *http.Request) bool {
	if !s.Cache.On() {
		return false
	}
	id, err := pathID(r)
	if err != nil {
		return false // getUser answers the error
	}
	e, ok := s.Cache.Cached(id)
	if ok {
		w.Header()[headerCache] = cacheHitValue
		writeJSON(w, http.StatusOK, e.Body)
	}
	return ok
}

func (s *server) getUser(w http.ResponseWriter, r *http.Request) {
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if e, ok := s.Cache.Cached(id); ok { // filled while this request queued
		w.Header()[headerCache] = cacheHitValue
		writeJSON(w, http.StatusOK, e.Body)
		return
	}
	ctx := r.Context()
	e, err := s.Cache.Get(ctx, id, func(ctx context.Context) (cache.Entry, error) {
		u, err := s.Users.Get(ctx, id)
		if err != nil {
			return cache.Entry{}, err
		}
		return entryOf(u)
	})
	if err != nil {
		s.fail(w, r, contextError(ctx, err))
		return
	}
	if s.Cache.On() { // with the cache off there is nothing to hit or miss
		w.Header()[headerCache] = cacheMissValue
	}
	writeJSON(w, http.StatusOK, e.Body)
}

// contextError reports a request that ran out of time as a timeout, even
// when the error came out of a shared cache fill.
func contextError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", store.ErrTimeout, err)
	}
	return err
}

func (s *server) createUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	var n store.NewUser
	if err := decodeJSON(r.Body, &n); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := validateNewUser("", n); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.Users.Create(ctx, n)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/v1/users/"+strconv.FormatInt(u.ID, 10))
	writeJSON(w, http.StatusCreated, appendUser(make([]byte, 0, 192), u))
}

func (s *server) createUsers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	req, err := decodeBatch(r.Body)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if err := validateBatch(req); err != nil {
		s.fail(w, r, err)
		return
	}
	users, err := s.Users.CreateBatch(ctx, req.Users)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeUsers(w, http.StatusCreated, users, nil)
}

func (s *server) updateUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var patch store.UserPatch
	if err := decodeJSON(r.Body, &patch); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := validatePatch(patch); err != nil {
		s.fail(w, r, err)
		return
	}
	u, err := s.Users.Update(ctx, id, patch)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	e, err := entryOf(u)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Cache.Updated(ctx, id, e)
	writeJSON(w, http.StatusOK, e.Body)
}

func (s *server) deleteUser(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, err := pathID(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	version, err := s.Users.Delete(ctx, id)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.Cache.Deleted(ctx, id, version)
	w.WriteHeader(http.StatusNoContent)
}

// writeUsers writes {"users":[...]} and, when there is a next page, its
// cursor as "next_after".
func writeUsers(w http.ResponseWriter, status int, users []store.User, nextAfter *int64) {
	b := make([]byte, 0, 64+192*len(users))
	b = append(b, `{"users":`...)
	b = appendUsers(b, users)
	if nextAfter != nil {
		b = append(b, `,"next_after":`...)
		b = strconv.AppendInt(b, *nextAfter, 10)
	}
	writeJSON(w, status, append(b, '}'))
}

func (s *server) listUsers(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	if q.Has("ids") {
		ids, err := parseIDs(q.Get("ids"))
		if err != nil {
			s.fail(w, r, err)
			return
		}
		users, err := s.Users.GetMany(ctx, ids)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		writeUsers(w, http.StatusOK, users, nil)
		return
	}
	limit, err := intParam(q.Get("limit"), "limit", defaultPage, 1, maxPage)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	after, err := intParam(q.Get("after"), "after", 0, 0, 1<<63-1)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	users, err := s.Users.List(ctx, after, int(limit))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var next *int64
	if len(users) == int(limit) {
		next = &users[len(users)-1].ID
	}
	writeUsers(w, http.StatusOK, users, next)
}

func parseIDs(raw string) ([]int64, error) {
	// Count before splitting: a megabyte of commas must not become a
	// million strings.
	if n := strings.Count(raw, ",") + 1; raw == "" || n > maxBatchRead {
		return nil, &apiError{status: http.StatusUnprocessableEntity, code: codeValidation,
			message: fmt.Sprintf("ids: must list 1 to %d ids, got %d", maxBatchRead, n)}
	}
	parts := strings.Split(raw, ",")
	ids := make([]int64, len(parts))
	for i, p := range parts {
		id, err := strconv.ParseInt(strings.TrimSpace(p), 10, 64)
		if err != nil || id < 1 {
			return nil, &apiError{status: http.StatusBadRequest, code: codeInvalidParam,
				message: fmt.Sprintf("ids[%d]: must be a positive integer, got %q", i, p)}
		}
		ids[i] = id
	}
	return ids, nil
}

func intParam(raw, name string, def, lo, hi int64) (int64, error) {
	if raw == "" {
		return def, nil
	}
	v, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, &apiError{status: http.StatusBadRequest, code: codeInvalidParam,
			message: fmt.Sprintf("%s: must be an integer, got %q", name, raw)}
	}
	if v < lo || v > hi {
		return 0, &apiError{status: http.StatusUnprocessableEntity, code: codeValidation,
			message: fmt.Sprintf("%s: must be between %d and %d, got %d", name, lo, hi, v)}
	}
	return v, nil
}
