package config

import (
	"strings"
	"testing"
)

// FuzzParse checks that any input either parses into a config that passes
// validation and survives a Marshal/Parse round trip, or fails cleanly.
func FuzzParse(f *testing.F) {
	seeds := []string{
		"",
		"generation: 3\n",
		"workers:\n  maxInFlight: 8\n  queueDepth: 16\n  queueTimeout: 100ms\n",
		"server:\n  addr: 127.0.0.1:8080\n  adminAddr: 127.0.0.1:9090\n",
		"rateLimit:\n  requestsPerSecond: 5\n  burst: 10\n  trustedProxies: [10.0.0.0/8]\n",
		"cache:\n  ttl: 1m\n  maxEntries: 5\n  redis:\n    urlEnv: REDIS_URL\n",
		`{"database": {"maxConns": 4, "minConns": 1, "statementTimeout": "1s"}}`,
		"workers:\n  maxInFlight: -1\n",
		"workers:\n  queueTimeout: 5\n",
		"unknownField: 1\n",
		"server: [\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if strings.TrimSpace(err.Error()) == "" {
				t.Fatal("empty error message")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted an invalid config: %v", err)
		}
		out, err := Marshal(c)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("round trip failed: %v\n%s", err, out)
		}
	})
}

func TestParseErrorsNameTheField(t *testing.T) {
	tests := map[string]string{
		"workers:\n  maxInFlight: 0\n":                     "workers.maxInFlight",
		"database:\n  minConns: 20\n  maxConns: 4\n":       "database.minConns",
		"rateLimit:\n  trustedProxies: [nope]\n":           "rateLimit.trustedProxies[0]",
		"server:\n  drainDelay: -1s\n":                     "server.drainDelay",
		"cache:\n  redis:\n    urlEnv: 'bad name'\n":       "cache.redis.urlEnv",
		"server:\n  addr: ':9090'\n":                       "server.adminAddr",
		"rateLimit:\n  requestsPerSecond: 2\n  burst: 0\n": "rateLimit.burst",
	}
	for in, field := range tests {
		_, err := Parse([]byte(in))
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("Parse(%q) = %v, want an error naming %s", in, err, field)
		}
	}
}

func TestKeepRestartFieldsMatchesRestartRequired(t *testing.T) {
	old := Default()
	next := Default()
	next.Server.Addr = ":1"
	next.Server.AdminAddr = ":2"
	next.Server.EnablePprof = true
	next.Database.URLEnv = "OTHER"
	next.Cache.Redis = &Redis{URLEnv: "R"}
	next.Log.Format = "text"
	next.Workers.MaxInFlight = 3
	if got := RestartRequired(old, next); len(got) != 6 {
		t.Fatalf("RestartRequired = %v, want 6 fields", got)
	}
	kept := KeepRestartFields(old, next)
	if got := RestartRequired(old, kept); len(got) != 0 {
		t.Fatalf("after KeepRestartFields, RestartRequired = %v, want none", got)
	}
	if kept.Workers.MaxInFlight != 3 {
		t.Fatal("KeepRestartFields dropped a live field")
	}
}
