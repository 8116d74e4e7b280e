package testenv

import "testing"

func TestWithDatabase(t *testing.T) {
	tests := map[string]string{
		"postgres://u:p@127.0.0.1:5432/pacer?sslmode=disable": "postgres://u:p@127.0.0.1:5432/other?sslmode=disable",
		"host=127.0.0.1 user=u":                               "host=127.0.0.1 user=u dbname=other",
	}
	for in, want := range tests {
		if got := withDatabase(in, "other"); got != want {
			t.Errorf("withDatabase(%q) = %q, want %q", in, got, want)
		}
	}
	if got := WithHostPort(t, "postgres://u:p@127.0.0.1:5432/db", "127.0.0.1:6000"); got != "postgres://u:p@127.0.0.1:6000/db" {
		t.Errorf("WithHostPort = %q", got)
	}
}
