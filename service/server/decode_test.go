package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/pacer-dev/pacer/service/store"
)

func statusOf(err error) int {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	return 0
}

func TestDecodeJSONStatus(t *testing.T) {
	tests := []struct {
		name, body string
		limit      int64
		want       int // 0: decoded
	}{
		{name: "ok", body: `{"name":"Ada","email":"ada@example.com"}`},
		{name: "empty", body: ``, want: 400},
		{name: "truncated", body: `{"name":"Ada"`, want: 400},
		{name: "syntax", body: `{"name":}`, want: 400},
		{name: "wrong type", body: `{"name":5}`, want: 400},
		{name: "array", body: `[]`, want: 400},
		{name: "unknown field", body: `{"nmae":"x"}`, want: 400},
		{name: "trailing data", body: `{"name":"a"} {}`, want: 400},
		{name: "trailing garbage", body: `{"name":"a"} x`, want: 400},
		{name: "too large", body: `{"name":"` + strings.Repeat("a", 100) + `"}`, limit: 50, want: 413},
	}
	t.Run("read deadline", func(t *testing.T) {
		body := io.MultiReader(strings.NewReader(`{"name":`), iotest.ErrReader(&net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}))
		var n store.NewUser
		err := decodeJSON(http.MaxBytesReader(httptest.NewRecorder(), io.NopCloser(body), 1<<20), &n)
		if got := statusOf(err); got != http.StatusRequestTimeout {
			t.Fatalf("status = %d (%v), want 408", got, err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body = strings.NewReader(tt.body)
			r := httptest.NewRequest("POST", "/", body)
			if tt.limit > 0 {
				r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, tt.limit)
			}
			var n store.NewUser
			if got := statusOf(decodeJSON(r.Body, &n)); got != tt.want {
				t.Fatalf("status = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestValidateNewUser(t *testing.T) {
	tests := []struct {
		user  store.NewUser
		field string // "" means valid
	}{
		{store.NewUser{Name: "Ada", Email: "ada@example.com"}, ""},
		{store.NewUser{Name: strings.Repeat("é", 200), Email: "a@b.io"}, ""},
		{store.NewUser{Name: strings.Repeat("é", 201), Email: "a@b.io"}, "name"},
		{store.NewUser{Name: "  ", Email: "a@b.io"}, "name"},
		{store.NewUser{Name: "", Email: "a@b.io"}, "name"},
		{store.NewUser{Name: "\xff", Email: "a@b.io"}, "name"},
		{store.NewUser{Name: "Ada", Email: ""}, "email"},
		{store.NewUser{Name: "Ada", Email: "not-an-email"}, "email"},
		{store.NewUser{Name: "Ada", Email: "Ada <ada@example.com>"}, "email"},
		{store.NewUser{Name: "Ada", Email: "ada@localhost"}, "email"},
		{store.NewUser{Name: "Ada", Email: strings.Repeat("a", 250) + "@b.io"}, "email"},
	}
	for _, tt := range tests {
		err := validateNewUser("", tt.user)
		switch {
		case tt.field == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tt.user, err)
		case tt.field != "" && (err == nil || !strings.HasPrefix(err.message, tt.field+":")):
			t.Errorf("%+v: error %v, want one naming %s", tt.user, err, tt.field)
		}
	}
}

func TestValidateBatchNamesTheIndex(t *testing.T) {
	ok := store.NewUser{Name: "A", Email: "a@example.com"}
	err := validateBatch(batchCreateRequest{Users: []store.NewUser{ok, {Name: "B", Email: "bad"}}})
	if err == nil || *err.index != 1 || err.status != 422 || !strings.Contains(err.message, "users[1].email") {
		t.Fatalf("got %+v, want 422 naming users[1].email", err)
	}
	dup := store.NewUser{Name: "C", Email: "A@example.com"}
	err = validateBatch(batchCreateRequest{Users: []store.NewUser{ok, ok, dup}})
	if err == nil || *err.index != 1 || err.status != 409 {
		t.Fatalf("got %+v, want 409 at index 1", err)
	}
	if err := validateBatch(batchCreateRequest{Users: make([]store.NewUser, maxBatchCreate+1)}); err == nil || err.status != 422 {
		t.Fatalf("oversized batch: got %+v, want 422", err)
	}
}

// FuzzDecodeCreate feeds arbitrary bodies to the create decoder and checks
// that every outcome is a decoded user or a 400/413/422, never a panic or
// another status; accepted users are valid.
func FuzzDecodeCreate(f *testing.F) {
	for _, s := range []string{
		`{"name":"Ada","email":"ada@example.com"}`,
		`{"name":"","email":""}`,
		`{"name":null}`,
		`{"users":[{"name":"a","email":"a@b.io"}]}`,
		`[1,2,3]`, `"str"`, `{`, `{"name":"\u0000"}`, `{"email":"a@b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest("POST", "/", strings.NewReader(string(body)))
		r.Body = http.MaxBytesReader(httptest.NewRecorder(), r.Body, 1<<10)
		var n store.NewUser
		if err := decodeJSON(r.Body, &n); err != nil {
			if s := statusOf(err); s != 400 && s != 413 {
				t.Fatalf("decode status %d for %q", s, body)
			}
			return
		}
		if err := validateNewUser("", n); err != nil {
			if err.status != 422 {
				t.Fatalf("validate status %d", err.status)
			}
			return
		}
		if n.Name == "" || n.Email == "" {
			t.Fatalf("accepted empty fields: %+v", n)
		}
		if strings.ContainsRune(n.Name+n.Email, 0) {
			t.Fatalf("accepted U+0000, which PostgreSQL cannot store: %+v", n)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"users":[{"name":"a","email":"a@b.io"},{"name":"b","email":"A@b.io"}]}`))
	f.Add([]byte(`{"users":[]}`))
	f.Add([]byte(`{"users":{}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req batchCreateRequest
		if err := decodeJSON(strings.NewReader(string(body)), &req); err != nil {
			if s := statusOf(err); s != 400 {
				t.Fatalf("decode status %d", s)
			}
			return
		}
		if err := validateBatch(req); err != nil && err.status != 422 && err.status != 409 {
			t.Fatalf("validate status %d", err.status)
		}
	})
}

func TestRequestIDs(t *testing.T) {
	g := newRequestIDs()
	a, b := string(g.append(nil, g.next())), string(g.append(nil, g.next()))
	if a == b || !validRequestID(a) || !validRequestID(b) {
		t.Fatalf("ids %q %q: want distinct valid ids", a, b)
	}
	for _, bad := range []string{"", "has space", strings.Repeat("x", 129), "new\nline"} {
		if validRequestID(bad) {
			t.Errorf("validRequestID(%q) = true", bad)
		}
	}
}
