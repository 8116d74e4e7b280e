package app

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
	"github.com/pacer-dev/pacer/service/store"
)

type user = store.User

func createUser(t *testing.T, a *testApp, name, email string) user {
	t.Helper()
	res := a.do(t, "POST", "/v1/users", map[string]string{"name": name, "email": email})
	if res.status != http.StatusCreated {
		t.Fatalf("create %s: %d %s", email, res.status, res.body)
	}
	var u user
	res.json(t, &u)
	return u
}

func TestUsersCRUD(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{})

	u := createUser(t, a, "Ada", "ada@example.com")
	if u.ID == 0 || u.Name != "Ada" || u.Email != "ada@example.com" {
		t.Fatalf("created %+v", u)
	}
	res := a.do(t, "GET", fmt.Sprintf("/v1/users/%d", u.ID), nil)
	var got user
	res.json(t, &got)
	if res.status != 200 || got.ID != u.ID || res.header.Get("Content-Type") != "application/json" {
		t.Fatalf("get: %d %s", res.status, res.body)
	}

	res = a.do(t, "PATCH", fmt.Sprintf("/v1/users/%d", u.ID), `{"name":"Ada L."}`)
	res.json(t, &got)
	if res.status != 200 || got.Name != "Ada L." || got.Email != u.Email {
		t.Fatalf("patch: %d %s", res.status, res.body)
	}
	// Read after write, through the cache filled by the first GET.
	res = a.do(t, "GET", fmt.Sprintf("/v1/users/%d", u.ID), nil)
	res.json(t, &got)
	if got.Name != "Ada L." {
		t.Fatalf("read after write saw %q", got.Name)
	}

	if res := a.do(t, "DELETE", fmt.Sprintf("/v1/users/%d", u.ID), nil); res.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", res.status, res.body)
	}
	if res := a.do(t, "GET", fmt.Sprintf("/v1/users/%d", u.ID), nil); res.status != 404 || res.errorCode(t) != "not_found" {
		t.Fatalf("get after delete: %d %s", res.status, res.body)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) { c.Server.MaxBodyBytes = 1024 }})
	existing := createUser(t, a, "Bob", "bob@example.com")
	other := createUser(t, a, "Eve", "eve@example.com")
	id := fmt.Sprintf("/v1/users/%d", existing.ID)

	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"malformed json", "POST", "/v1/users", `{"name":`, 400, "invalid_json"},
		{"wrong type", "POST", "/v1/users", `{"name":1,"email":"x@example.com"}`, 400, "invalid_json"},
		{"unknown field", "POST", "/v1/users", `{"name":"a","email":"a@example.com","admin":true}`, 400, "invalid_json"},
		{"empty name", "POST", "/v1/users", `{"name":"","email":"a@example.com"}`, 422, "validation_failed"},
		{"long name", "POST", "/v1/users", map[string]string{"name": strings.Repeat("n", 201), "email": "a@example.com"}, 422, "validation_failed"},
		{"bad email", "POST", "/v1/users", `{"name":"a","email":"nope"}`, 422, "validation_failed"},
		{"duplicate email", "POST", "/v1/users", `{"name":"b","email":"BOB@example.com"}`, 409, "duplicate_email"},
		{"body too large", "POST", "/v1/users", map[string]string{"name": strings.Repeat("n", 2000), "email": "a@example.com"}, 413, "body_too_large"},
		{"bad id", "GET", "/v1/users/abc", nil, 400, "invalid_parameter"},
		{"missing user", "GET", "/v1/users/999999", nil, 404, "not_found"},
		{"patch missing user", "PATCH", "/v1/users/999999", `{"name":"x"}`, 404, "not_found"},
		{"patch nothing", "PATCH", id, `{}`, 422, "validation_failed"},
		{"patch bad email", "PATCH", id, `{"email":"x"}`, 422, "validation_failed"},
		{"patch wrong type", "PATCH", id, `{"name":[1]}`, 400, "invalid_json"},
		{"patch duplicate email", "PATCH", fmt.Sprintf("/v1/users/%d", other.ID), `{"email":"Bob@Example.com"}`, 409, "duplicate_email"},
		{"delete missing", "DELETE", "/v1/users/999999", nil, 404, "not_found"},
		{"too many ids", "GET", "/v1/users?ids=" + strings.Repeat("1,", 100) + "1", nil, 422, "validation_failed"},
		{"bad ids", "GET", "/v1/users?ids=1,x", nil, 400, "invalid_parameter"},
		{"bad limit", "GET", "/v1/users?limit=0", nil, 422, "validation_failed"},
		{"limit not a number", "GET", "/v1/users?limit=ten", nil, 400, "invalid_parameter"},
		{"empty batch", "POST", "/v1/users/batch", `{"users":[]}`, 422, "validation_failed"},
		{"welcome missing", "POST", "/v1/users/999999/welcome", nil, 404, "not_found"},
		{"unknown path", "GET", "/v2/nothing", nil, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := a.do(t, tt.method, tt.path, tt.body)
			if res.status != tt.status || res.errorCode(t) != tt.code {
				t.Fatalf("%d %s, want %d %s", res.status, res.body, tt.status, tt.code)
			}
		})
	}
	// A failed write changed nothing.
	res := a.do(t, "GET", "/v1/users?limit=100", nil)
	var page struct{ Users []user }
	res.json(t, &page)
	if len(page.Users) != 2 || page.Users[1].Email != "eve@example.com" {
		t.Fatalf("after failed writes: %s", res.body)
	}
}

func TestRequestIDKeptOrMade(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{})
	res := a.do(t, "GET", "/v1/users/1", nil, "X-Request-Id", "trace-abc-123")
	if got := res.header.Get("X-Request-Id"); got != "trace-abc-123" {
		t.Fatalf("X-Request-Id = %q, want the client's", got)
	}
	r1, r2 := a.do(t, "GET", "/v1/users/1", nil), a.do(t, "GET", "/v1/users/1", nil)
	if r1.header.Get("X-Request-Id") == r2.header.Get("X-Request-Id") {
		t.Fatal("generated request ids repeat")
	}
}

func TestBatchCreateAndReads(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{})
	createUser(t, a, "Taken", "taken@example.com")

	// All or nothing: item 2 collides with an existing user.
	bad := `{"users":[{"name":"a","email":"a@example.com"},{"name":"b","email":"b@example.com"},{"name":"c","email":"taken@example.com"}]}`
	res := a.do(t, "POST", "/v1/users/batch", bad)
	if res.status != 409 || !strings.Contains(string(res.body), "users[2]") || !strings.Contains(string(res.body), `"index":2`) {
		t.Fatalf("batch with duplicate: %d %s", res.status, res.body)
	}
	// Invalid item: 422 naming the index, nothing written.
	res = a.do(t, "POST", "/v1/users/batch", `{"users":[{"name":"a","email":"a@example.com"},{"name":"","email":"e@example.com"}]}`)
	if res.status != 422 || !strings.Contains(string(res.body), "users[1].name") {
		t.Fatalf("batch with invalid item: %d %s", res.status, res.body)
	}
	// Too many items.
	items := make([]map[string]string, 1001)
	for i := range items {
		items[i] = map[string]string{"name": "n", "email": fmt.Sprintf("u%d@example.com", i)}
	}
	if res := a.do(t, "POST", "/v1/users/batch", map[string]any{"users": items}); res.status != 422 {
		t.Fatalf("1001 items: %d %s", res.status, res.body)
	}
	// 1000 items in one transaction.
	res = a.do(t, "POST", "/v1/users/batch", map[string]any{"users": items[:1000]})
	var created struct{ Users []user }
	res.json(t, &created)
	if res.status != 201 || len(created.Users) != 1000 {
		t.Fatalf("1000 items: %d, %d users", res.status, len(created.Users))
	}

	// Keyset pagination visits every user once, in id order.
	seen, after, pages := 0, int64(0), 0
	for {
		res := a.do(t, "GET", fmt.Sprintf("/v1/users?limit=300&after=%d", after), nil)
		var page struct {
			Users     []user
			NextAfter *int64 `json:"next_after"`
		}
		res.json(t, &page)
		for _, u := range page.Users {
			if u.ID <= after {
				t.Fatalf("page out of order: %d after %d", u.ID, after)
			}
			after = u.ID
		}
		seen += len(page.Users)
		pages++
		if page.NextAfter == nil {
			break
		}
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	if seen != 1001 || pages != 4 {
		t.Fatalf("paginated %d users in %d pages, want 1001 in 4", seen, pages)
	}

	// Batch read: in the order asked, missing ids left out, repeats once.
	ids := fmt.Sprintf("%d,999999,%d,%d", created.Users[5].ID, created.Users[1].ID, created.Users[5].ID)
	res = a.do(t, "GET", "/v1/users?ids="+ids, nil)
	var batch struct{ Users []user }
	res.json(t, &batch)
	if len(batch.Users) != 2 || batch.Users[0].ID != created.Users[5].ID || batch.Users[1].ID != created.Users[1].ID {
		t.Fatalf("batch read %s: %s", ids, res.body)
	}
}

func TestWelcomeJobRuns(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn})
	u := createUser(t, a, "Wendy", "wendy@example.com")
	res := a.do(t, "POST", fmt.Sprintf("/v1/users/%d/welcome", u.ID), nil)
	if res.status != http.StatusAccepted {
		t.Fatalf("welcome: %d %s", res.status, res.body)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	eventually(t, "welcome job recorded", func() bool {
		var welcomed bool
		err := conn.QueryRow(context.Background(), "SELECT welcomed_at IS NOT NULL FROM users WHERE id = $1", u.ID).Scan(&welcomed)
		return err == nil && welcomed
	})
	eventually(t, "job counted", func() bool { return a.metric(t, "pacer_jobs_done_total") == 1 })
}

// A request still waiting for the database at the request timeout is
// answered 504 on a connection that then closes (its context was cancelled:
// deadlines.go), and the next request is served on a new one. The statement
// timeout is out of the way, so only the request timeout can end the wait.
func TestRequestTimeoutIs504(t *testing.T) {
	t.Parallel()
	dsn := testenv.FreshDatabase(t)
	a := startApp(t, appOptions{dsn: dsn, mutate: func(c *config.Config) {
		c.Server.RequestTimeout = config.D(300 * time.Millisecond)
		c.Database.StatementTimeout = config.D(0)
		c.Cache.TTL = config.D(0)
	}})
	seedUsers(t, a, 1)
	release := lockUsers(t, dsn)
	res := a.do(t, "GET", "/v1/users/1", nil)
	if res.status != 504 || res.errorCode(t) != "timeout" {
		t.Fatalf("%d %s, want 504 timeout", res.status, res.body)
	}
	if !res.closed {
		t.Fatal("the connection of a timed-out request stays open; want Connection: close")
	}
	release()
	if res := a.do(t, "GET", "/v1/users/1", nil); res.status != 200 || res.header.Get("X-Cache") != "" {
		t.Fatalf("next request: %d %s, X-Cache %q (none with the cache off)", res.status, res.body, res.header.Get("X-Cache"))
	}
	if got := a.metric(t, "pacer_http_requests_total", `route="/v1/users/{id}"`, `code="5xx"`); got != 1 {
		t.Fatalf("5xx count %v, want the one timeout", got)
	}
}

func TestRateLimit429(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.RateLimit.RequestsPerSecond = 0.01 // no token comes back during the test
		c.RateLimit.Burst = 2
	}})
	for i := range 2 {
		if res := a.do(t, "GET", "/v1/users/1", nil); res.status != 404 {
			t.Fatalf("request %d: %d", i, res.status)
		}
	}
	res := a.do(t, "GET", "/v1/users/1", nil)
	if retry, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || retry < 1 || retry > 100 {
		t.Fatalf("Retry-After = %q, want 1 to 100 seconds", res.header.Get("Retry-After"))
	}
	if res.status != 429 || res.errorCode(t) != "rate_limited" {
		t.Fatalf("third request: %d %s Retry-After=%q", res.status, res.body, res.header.Get("Retry-After"))
	}
	if got := a.metric(t, "pacer_ratelimit_rejections_total"); got != 1 {
		t.Fatalf("rate-limited counter = %v", got)
	}
}

// slowRequest starts a POST whose body the test controls, so the request
// holds its worker slot (it is reading the body) until finish is called.
func slowRequest(t *testing.T, a *testApp, email string) (finish func() *http.Response) {
	t.Helper()
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", a.api+"/v1/users", pr)
	req.ContentLength = -1
	resc := make(chan *http.Response, 1)
	go func() {
		res, err := client.Do(req)
		if err != nil {
			t.Errorf("slow request: %v", err)
			resc <- nil
			return
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		resc <- res
	}()
	_, _ = pw.Write([]byte(`{"name":"slow",`))
	return func() *http.Response {
		_, _ = pw.Write([]byte(`"email":"` + email + `"}`))
		_ = pw.Close()
		return <-resc
	}
}

func TestOverload503(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.Server.RequestTimeout = config.D(time.Minute) // the slow body is not cut short
		c.Workers.MaxInFlight = 1
		c.Workers.QueueDepth = 1
		c.Workers.QueueTimeout = config.D(50 * time.Millisecond)
	}})
	finish := slowRequest(t, a, "slow@example.com")
	eventually(t, "slot held", func() bool { return a.metric(t, "pacer_http_requests_in_flight") == 1 })

	// One may queue: it waits 50ms and is shed.
	res := a.do(t, "GET", "/v1/users/1", nil)
	if res.status != 503 || res.errorCode(t) != "overloaded" || res.header.Get("Retry-After") == "" {
		t.Fatalf("queued request: %d %s", res.status, res.body)
	}
	if a.metric(t, "pacer_queue_rejections_total", `reason="queue_timeout"`) != 1 {
		t.Fatal("queue timeout not counted")
	}
	// With the queue full, the next is shed at once.
	queued := make(chan response, 1)
	a.limiter.SetLimits(limiterLimits(1, 1, time.Hour))
	go func() { queued <- a.do(t, "GET", "/v1/users/1", nil) }()
	eventually(t, "one queued", func() bool { return a.metric(t, "pacer_queue_length") == 1 })
	res = a.do(t, "GET", "/v1/users/1", nil)
	if res.status != 503 || a.metric(t, "pacer_queue_rejections_total", `reason="queue_full"`) != 1 {
		t.Fatalf("request past a full queue: %d %s", res.status, res.body)
	}
	if r := finish(); r == nil || r.StatusCode != 201 {
		t.Fatalf("slow request did not complete: %v", r)
	}
	// It ran after the slow create committed, so it finds that user.
	if r := <-queued; r.status != 200 {
		t.Fatalf("queued request after the slot freed: %d %s", r.status, r.body)
	}
}

// TestSlowBodyIs408: a client that trickles its body cannot hold a worker
// slot past the request timeout; it gets a JSON 408 and the slot serves
// the next request.
func TestSlowBodyIs408(t *testing.T) {
	t.Parallel()
	a := startApp(t, appOptions{mutate: func(c *config.Config) {
		c.Server.RequestTimeout = config.D(200 * time.Millisecond)
		c.Workers.MaxInFlight = 1
		c.Workers.QueueDepth = 1
		c.Workers.QueueTimeout = config.D(time.Minute)
	}})
	// A raw connection, so the answer is read even though the server closes
	// the connection while the body is still being written (an http.Client
	// may then report its failed write instead of the response).
	conn, err := net.Dial("tcp", strings.TrimPrefix(a.api, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() { // one byte of whitespace at a time, never the end
		_, _ = io.WriteString(conn, "POST /v1/users HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"+
			"Transfer-Encoding: chunked\r\n\r\n12\r\n{\"name\":\"trickle\",\r\n")
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := io.WriteString(conn, "1\r\n \r\n"); err != nil {
					return // the server gave up on the body, as it should
				}
			}
		}
	}()
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("trickled request: %v", err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	r := response{status: res.StatusCode, header: res.Header, body: raw}
	if r.status != http.StatusRequestTimeout || r.errorCode(t) != "body_timeout" ||
		r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("trickled request: %d %s", r.status, r.body)
	}
	if got := a.do(t, "GET", "/v1/users/1", nil); got.status != 404 {
		t.Fatalf("request after the trickler: %d %s", got.status, got.body)
	}
	if a.metric(t, "pacer_http_requests_total", `route="/v1/users"`, `method="POST"`, `code="4xx"`) != 1 {
		t.Fatal("the 408 is not counted")
	}
}
