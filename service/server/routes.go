package server

import "net/http"

// routes registers every endpoint with its middleware chain.
func (s *server) routes() {
	s.handle("POST /v1/users", s.createUser)
	s.handle("GET /v1/users", s.listUsers)
	s.handle("POST /v1/users/batch", s.createUsers)
	s.handleCached("GET /v1/users/{id}", s.cachedUser, s.getUser)
	s.handle("PATCH /v1/users/{id}", s.updateUser)
	s.handle("DELETE /v1/users/{id}", s.deleteUser)
	s.handle("POST /v1/users/{id}/welcome", s.welcomeUser)
	s.mux.HandleFunc("/", s.notFound)
}

// handle mounts h under pattern behind the per-route middleware, outermost
// first: route label, schema gate, rate limit, worker limit, body limit.
// The request timeout is on r.Context() (serveHTTP, deadlines.go).
func (s *server) handle(pattern string, h http.HandlerFunc) {
	s.handleCached(pattern, nil, h)
}

// handleCached is handle with a cache fast path: hit, if it answers, serves
// the request without a worker slot, so hits never queue behind misses and
// slots are left to the requests that need the database.
func (s *server) handleCached(pattern string, hit cacheHit, h http.HandlerFunc) {
	route := newRouteMetrics(s.Metrics, pattern)
	var chain http.Handler = h
	chain = s.withBodyLimit(chain)
	chain = s.withWorkerLimit(chain)
	if hit != nil {
		chain = withCacheHit(hit, chain)
	}
	chain = s.withRateLimit(chain)
	chain = s.withSchemaGate(chain)
	chain = withRoute(route, chain)
	s.mux.Handle(pattern, chain)
}

func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, codeNotFound, "no such endpoint: "+r.Method+" "+r.URL.Path)
}
