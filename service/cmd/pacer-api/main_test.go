package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
)

// TestMain lets the test binary stand in for pacer-api, so the test below
// runs the real main (signal handling and exit status included) without a
// separate build.
func TestMain(m *testing.M) {
	if os.Getenv("PACER_API_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestSIGTERMExitsZero(t *testing.T) {
	dsn := testenv.FreshDatabase(t)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	cfg := "server:\n  addr: 127.0.0.1:0\n  adminAddr: 127.0.0.1:0\nlog:\n  format: json\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "--config", cfgPath)
	cmd.Env = append(os.Environ(), "PACER_API_RUN_MAIN=1", "DATABASE_URL="+dsn)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	// The first log line names the bound admin address.
	lines := bufio.NewScanner(stderr)
	var started struct {
		Msg       string `json:"msg"`
		AdminAddr string `json:"admin_addr"`
	}
	for lines.Scan() {
		if json.Unmarshal(lines.Bytes(), &started) == nil && started.Msg == "pacer-api started" {
			break
		}
	}
	if started.AdminAddr == "" {
		t.Fatal("no start line in the logs")
	}
	go func() {
		for lines.Scan() { // keep draining so the process never blocks on stderr
		}
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get("http://" + started.AdminAddr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("pacer-api after SIGTERM: %v, want exit status 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("pacer-api did not exit within 60s of SIGTERM")
	}
}
