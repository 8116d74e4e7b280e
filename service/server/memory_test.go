package server

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/pacer-dev/pacer/service/store"
)

// allocatedBytes is what fn allocates, averaged over runs (TotalAlloc from
// runtime.MemStats; deterministic enough for a bound several times larger
// than the expected figure; the test is not parallel).
func allocatedBytes(runs int, fn func()) float64 {
	fn() // warm-up: pools, lazily built tables
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		fn()
	}
	runtime.ReadMemStats(&after)
	return float64(after.TotalAlloc-before.TotalAlloc) / float64(runs)
}

const bodyLimit = 1 << 20

// TestHostileBodiesStayWithinMemoryBound: issue 11 row 2. A 1 MiB batch of
// `{}` (349,000 items) allocated 59 MB, and 1 MiB of commas in ?ids= 23 MB,
// before any size check. Now the count is enforced while decoding and
// splitting, so a request allocates less than twice the body limit.
func TestHostileBodiesStayWithinMemoryBound(t *testing.T) {
	items := strings.Repeat("{},", bodyLimit/3-10)
	batch := `{"users":[` + items[:len(items)-1] + `]}`
	commas := strings.Repeat(",", bodyLimit)

	tests := []struct {
		name string
		run  func() error
		want int
	}{
		{"batch of empty objects", func() error {
			r := http.MaxBytesReader(httptest.NewRecorder(), ioNopCloser(batch), bodyLimit)
			_, err := decodeBatch(r)
			return err
		}, 422},
		{"ids of commas", func() error { _, err := parseIDs(commas); return err }, 422},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.run()); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
			if b := allocatedBytes(5, func() { _ = tt.run() }); b > 2*bodyLimit {
				t.Fatalf("allocated %.1f MiB per request; want < 2 × the 1 MiB body limit", b/(1<<20))
			}
		})
	}
}

func TestDecodeBatch(t *testing.T) {
	tests := []struct {
		body      string
		wantLen   int
		wantCode  int
		wantInMsg string
	}{
		{body: `{"users":[{"name":"a","email":"a@b.io"},{"name":"b","email":"b@b.io"}]}`, wantLen: 2},
		{body: `{"users":[]}`, wantLen: 0},
		{body: ``, wantCode: 400, wantInMsg: "empty"},
		{body: `[]`, wantCode: 400, wantInMsg: "must be a JSON object, got array"},
		{body: `{"users":{}}`, wantCode: 400, wantInMsg: "users: must be an array, got object"},
		{body: `{"users":[{"nmae":"a"}]}`, wantCode: 400, wantInMsg: "users[0]: unknown field"},
		{body: `{"users":[{"name":"a","email":"a@b.io"},{"name":5}]}`, wantCode: 400, wantInMsg: "users[1]: name: must be a string"},
		{body: `{"users":[],"users":[]}`, wantCode: 400, wantInMsg: "twice"},
		{body: `{"other":1}`, wantCode: 400, wantInMsg: `unknown field "other"`},
		{body: `{"users":[]} {}`, wantCode: 400, wantInMsg: "single JSON object"},
		{body: `{"users":[{}`, wantCode: 400, wantInMsg: "truncated"},
		{body: `{"users":[` + strings.Repeat(`{},`, maxBatchCreate) + `{}]}`, wantCode: 422, wantInMsg: "at most 1000"},
	}
	for _, tt := range tests {
		name := tt.body
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			req, err := decodeBatch(strings.NewReader(tt.body))
			if got := statusOf(err); got != tt.wantCode || (err != nil && !strings.Contains(err.Error(), tt.wantInMsg)) {
				t.Fatalf("err = %v (status %d), want status %d containing %q", err, got, tt.wantCode, tt.wantInMsg)
			}
			if err == nil && len(req.Users) != tt.wantLen {
				t.Fatalf("%d users, want %d", len(req.Users), tt.wantLen)
			}
		})
	}
}

// TestArrayBodyNamesNoGoType: `[]` to POST /v1/users said "must be
// store.NewUser"; a client knows JSON types only.
func TestArrayBodyNamesNoGoType(t *testing.T) {
	var n store.NewUser
	err := decodeJSON(strings.NewReader(`[]`), &n)
	if err == nil || err.Error() != "body must be a JSON object, got array" {
		t.Fatalf("err = %v", err)
	}
}

func ioNopCloser(s string) *nopCloser { return &nopCloser{strings.NewReader(s)} }

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }
