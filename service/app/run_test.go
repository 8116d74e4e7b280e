package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pacer-dev/pacer/service/config"
)

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestPrintConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), []string{"--print-config"},
		env("DATABASE_URL", "postgres://u:secret@db/x", ListenHostEnv, "127.0.3.4"), &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(out.Bytes())
	if err != nil {
		t.Fatalf("printed config does not parse: %v\n%s", err, out.String())
	}
	if cfg.Server.Addr != "127.0.3.4:8080" || cfg.Server.AdminAddr != "127.0.3.4:9090" {
		t.Fatalf("%s not applied: %s / %s", ListenHostEnv, cfg.Server.Addr, cfg.Server.AdminAddr)
	}
	if strings.Contains(out.String(), "secret") {
		t.Fatal("printed config holds the DSN")
	}
}

func TestRunRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("workers:\n  maxInFlight: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(dir, "typo.yaml")
	if err := os.WriteFile(typo, []byte("workers:\n  maxInFlite: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("# nothing yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		env  func(string) string
		want string
	}{
		{"invalid value", []string{"--config", bad}, env("DATABASE_URL", "postgres://x"), "workers.maxInFlight"},
		{"unknown field", []string{"--config", typo}, env("DATABASE_URL", "postgres://x"), "maxInFlite"},
		{"empty file", []string{"--config", empty}, env("DATABASE_URL", "postgres://x"), "holds no settings"},
		{"missing file", []string{"--config", filepath.Join(dir, "none.yaml")}, env(), "none.yaml"},
		{"no database url", nil, env(), "DATABASE_URL"},
		{"bad database url", nil, env("DATABASE_URL", "postgres://u:pw@host:notaport/db"), "database.urlEnv"},
		{"bad flag", []string{"--nope"}, env(), "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), tt.args, tt.env, &out, &errOut)
			if err == nil || !strings.Contains(err.Error()+errOut.String(), tt.want) {
				t.Fatalf("Run = %v, want an error naming %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "pw@") {
				t.Fatalf("error leaks the DSN: %v", err)
			}
		})
	}
}

func TestStartFailsOnBusyPort(t *testing.T) {
	a := startApp(t, appOptions{})
	cfg := testConfig()
	cfg.Server.Addr = a.APIAddr() // taken
	_, err := Start(context.Background(), Options{Config: cfg, Getenv: env("DATABASE_URL", "postgres://127.0.0.1:1/x")})
	if err == nil || !strings.Contains(err.Error(), "server.addr") {
		t.Fatalf("Start on a busy port = %v, want an error naming server.addr", err)
	}
}
