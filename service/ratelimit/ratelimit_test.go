package ratelimit

import (
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeClock lets tests move time without sleeping.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestLimiter(l Limits) (*Limiter, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	lim := New(l)
	lim.now = clock.now
	return lim, clock
}

func TestAllowTable(t *testing.T) {
	type step struct {
		advance   time.Duration
		client    string
		wantOK    bool
		wantRetry time.Duration
	}
	tests := []struct {
		name   string
		limits Limits
		steps  []step
	}{
		{
			name:   "off when rate is zero",
			limits: Limits{RequestsPerSecond: 0, Burst: 0, MaxClients: 1},
			steps:  []step{{client: "a", wantOK: true}, {client: "a", wantOK: true}},
		},
		{
			name:   "burst then refused with retry-after",
			limits: Limits{RequestsPerSecond: 1, Burst: 2, MaxClients: 10},
			steps: []step{
				{client: "a", wantOK: true}, {client: "a", wantOK: true},
				{client: "a", wantOK: false, wantRetry: time.Second},
				{client: "b", wantOK: true}, // separate bucket
				{advance: time.Second, client: "a", wantOK: true},
			},
		},
		{
			name:   "slow rate gives longer retry-after",
			limits: Limits{RequestsPerSecond: 0.25, Burst: 1, MaxClients: 10},
			steps: []step{
				{client: "a", wantOK: true},
				{client: "a", wantOK: false, wantRetry: 4 * time.Second},
			},
		},
		{
			name:   "evicted client keeps its debt",
			limits: Limits{RequestsPerSecond: 1, Burst: 1, MaxClients: 1},
			steps: []step{
				{client: "a", wantOK: true},
				{client: "a", wantOK: false, wantRetry: time.Second},
				{client: "b", wantOK: true}, // evicts a (table full)
				{client: "a", wantOK: false, wantRetry: time.Second},
				{advance: time.Second, client: "a", wantOK: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := newTestLimiter(tt.limits)
			for i, s := range tt.steps {
				clock.advance(s.advance)
				ok, retry := l.Allow(s.client)
				if ok != s.wantOK || retry != s.wantRetry {
					t.Fatalf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.client, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

func TestTableStaysBounded(t *testing.T) {
	l, clock := newTestLimiter(Limits{RequestsPerSecond: 10, Burst: 10, MaxClients: 100})
	for i := range 10_000 {
		l.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String())
		clock.advance(time.Microsecond)
	}
	if n := l.Clients(); n != 100 {
		t.Fatalf("clients = %d, want the bound 100", n)
	}
}

func TestIdleBucketsAreEvicted(t *testing.T) {
	l, clock := newTestLimiter(Limits{RequestsPerSecond: 10, Burst: 10, MaxClients: 100})
	for _, c := range []string{"a", "b", "c"} {
		l.Allow(c)
	}
	clock.advance(2 * time.Second) // > burst/rate: full again, so forgettable
	l.Allow("d")
	if n := l.Clients(); n != 1 {
		t.Fatalf("clients = %d, want 1 (idle ones evicted)", n)
	}
}

func TestSetLimitsAppliesToExistingClients(t *testing.T) {
	l, _ := newTestLimiter(Limits{RequestsPerSecond: 1, Burst: 1, MaxClients: 10})
	l.Allow("a")
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("second request allowed with burst 1")
	}
	l.SetLimits(Limits{RequestsPerSecond: 0, MaxClients: 10})
	if ok, _ := l.Allow("a"); !ok || l.Enabled() {
		t.Fatal("limiting still on after rate set to 0")
	}
	l.SetLimits(Limits{RequestsPerSecond: 1, Burst: 3, MaxClients: 10})
	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("request %d refused with burst 3", i)
		}
	}
}

func TestClientIdentity(t *testing.T) {
	proxies, err := ParsePrefixes([]string{"10.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		id     ClientIdentifier
		remote string
		xff    []string
		header map[string]string
		want   string
	}{
		{name: "remote ip", remote: "192.0.2.1:1234", want: "192.0.2.1"},
		{name: "xff ignored from untrusted peer", id: ClientIdentifier{TrustedProxies: proxies}, remote: "192.0.2.1:1234", xff: []string{"203.0.113.9"}, want: "192.0.2.1"},
		{name: "xff from trusted proxy", id: ClientIdentifier{TrustedProxies: proxies}, remote: "10.1.2.3:1234", xff: []string{"203.0.113.9"}, want: "203.0.113.9"},
		{name: "spoofed left entries ignored", id: ClientIdentifier{TrustedProxies: proxies}, remote: "10.1.2.3:1234", xff: []string{"1.1.1.1, 203.0.113.9, 10.9.9.9"}, want: "203.0.113.9"},
		{name: "several xff headers", id: ClientIdentifier{TrustedProxies: proxies}, remote: "10.1.2.3:1", xff: []string{"198.51.100.7", "10.2.2.2"}, want: "198.51.100.7"},
		{name: "malformed hop stops at peer", id: ClientIdentifier{TrustedProxies: proxies}, remote: "10.1.2.3:1", xff: []string{"nonsense"}, want: "10.1.2.3"},
		{name: "all trusted falls back to peer", id: ClientIdentifier{TrustedProxies: proxies}, remote: "10.1.2.3:1", xff: []string{"10.4.4.4"}, want: "10.1.2.3"},
		{name: "ipv6 trusted proxy", id: ClientIdentifier{TrustedProxies: proxies}, remote: "[::1]:1", xff: []string{"2001:db8::5"}, want: "2001:db8::/64"},
		{name: "ipv6 remote keyed per /64", remote: "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:1", want: "2001:db8:1:2::/64"},
		{name: "ipv6 same /64 shares a key", remote: "[2001:db8:1:2::1]:1", want: "2001:db8:1:2::/64"},
		{name: "ipv6 next /64 is another key", remote: "[2001:db8:1:3::1]:1", want: "2001:db8:1:3::/64"},
		{name: "ipv6 zone dropped", remote: "[fe80::1%eth0]:1", want: "fe80::/64"},
		{name: "ipv4-mapped ipv6 stays ipv4", remote: "[::ffff:192.0.2.7]:1", want: "192.0.2.7"},
		{name: "ipv4-mapped xff stays ipv4", id: ClientIdentifier{TrustedProxies: proxies}, remote: "10.1.2.3:1", xff: []string{"::ffff:198.51.100.8"}, want: "198.51.100.8"},
		{name: "ipv6 xff keyed per /64", id: ClientIdentifier{TrustedProxies: proxies}, remote: "10.1.2.3:1", xff: []string{"2001:db8:9:9:1::1"}, want: "2001:db8:9:9::/64"},
		{name: "header", id: ClientIdentifier{Header: "X-Api-Key"}, remote: "192.0.2.1:1", header: map[string]string{"X-Api-Key": "k1"}, want: headerKey("k1")},
		{name: "header missing falls back to ip", id: ClientIdentifier{Header: "X-Api-Key"}, remote: "192.0.2.1:1", want: "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.remote
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			for k, v := range tt.header {
				r.Header.Set(k, v)
			}
			if got := tt.id.Client(r); got != tt.want {
				t.Fatalf("Client() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHeaderKeyIsBounded(t *testing.T) {
	id := ClientIdentifier{Header: "X-Api-Key"}
	key := func(v string) string {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-Api-Key", v)
		return id.Client(r)
	}
	huge := strings.Repeat("k", 1<<20)
	a, b := key(huge), key(huge[:len(huge)-1]+"j")
	if len(a) != len(key("k1")) || len(a) > 64 {
		t.Fatalf("key of a 1 MiB value is %d bytes, want the fixed size %d", len(a), len(key("k1")))
	}
	if a == b {
		t.Fatal("different values share a key")
	}
	if a != key(huge) {
		t.Fatal("same value, different keys")
	}
	if !strings.HasPrefix(a, "h:") {
		t.Fatalf("header key %q lacks the h: prefix that keeps it apart from IP keys", a)
	}
}

// TestEvictionHandsBackNoTokens: a client that drains its bucket and then
// gets it evicted by a flood of other identities comes back exactly as
// drained as it would have been, not with a full bucket (issue 11, row 10).
func TestEvictionHandsBackNoTokens(t *testing.T) {
	lim, clock := newTestLimiter(Limits{RequestsPerSecond: 1, Burst: 5, MaxClients: 3})
	for i := range 5 {
		if ok, _ := lim.Allow("victim"); !ok {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	for i := range 10 { // evicts the drained bucket
		lim.Allow("cycled-" + strconv.Itoa(i))
	}
	if ok, retry := lim.Allow("victim"); ok || retry != time.Second {
		t.Fatalf("drained client back after eviction: ok=%v retry=%v; want refused, retry 1s", ok, retry)
	}
	clock.advance(2 * time.Second) // two tokens back, no more
	for i := range 2 {
		if ok, _ := lim.Allow("victim"); !ok {
			t.Fatalf("refill token %d refused", i)
		}
	}
	if ok, _ := lim.Allow("victim"); ok {
		t.Fatal("a third token after 2s at 1/s: the eviction handed tokens back")
	}
}

// TestTinyRateKeepsRetryAfter: the slowest rate the config allows still
// answers with a bounded, positive Retry-After.
func TestTinyRateKeepsRetryAfter(t *testing.T) {
	for _, rps := range []float64{0.01, 1e-10} {
		lim, _ := newTestLimiter(Limits{RequestsPerSecond: rps, Burst: 1, MaxClients: 10})
		lim.Allow("a")
		ok, retry := lim.Allow("a")
		if ok || retry < time.Second || retry > maxRetryAfter {
			t.Fatalf("rate %g: ok=%v retry=%v; want refused with 1s..%v", rps, ok, retry, maxRetryAfter)
		}
	}
}
