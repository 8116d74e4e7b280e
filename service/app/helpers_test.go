package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/config"
)

// testApp is a pacer-api running in the test process.
type testApp struct {
	*App
	api, admin string // base URLs
	cancel     context.CancelFunc
	done       chan error // Wait's result
	logs       *testenv.SyncBuffer
}

type appOptions struct {
	dsn        string               // default: a fresh database
	env        map[string]string    // extra environment
	configPath string               // watched config file; cfg is read from it
	mutate     func(*config.Config) // adjust the defaults
	notReady   bool                 // return without waiting for /readyz
}

func startApp(t *testing.T, o appOptions) *testApp {
	t.Helper()
	if o.dsn == "" {
		o.dsn = testenv.FreshDatabase(t)
	}
	env := map[string]string{"DATABASE_URL": o.dsn}
	for k, v := range o.env {
		env[k] = v
	}
	getenv := func(k string) string { return env[k] }

	var cfg config.Config
	if o.configPath != "" {
		var err error
		if cfg, err = loadConfig(o.configPath, getenv); err != nil {
			t.Fatal(err)
		}
	} else {
		cfg = testConfig()
		if o.mutate != nil {
			o.mutate(&cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := Start(ctx, Options{Config: cfg, ConfigPath: o.configPath, Getenv: getenv, LogOutput: logs})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ta := &testApp{App: a, api: "http://" + a.APIAddr(), admin: "http://" + a.AdminAddr(),
		cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { ta.done <- a.Wait() }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ta.done:
			if err != nil {
				t.Logf("app stopped: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("app did not stop within 60s")
		}
		if t.Failed() {
			t.Logf("app logs:\n%s", logs.String())
		}
	})
	if !o.notReady {
		eventually(t, "schema ready", func() bool { return ta.status(t, ta.admin+"/readyz") == 200 })
	}
	return ta
}

// testConfig listens on free loopback ports.
func testConfig() config.Config {
	cfg := config.Default()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Server.AdminAddr = "127.0.0.1:0"
	cfg.Log.Format = "json"
	cfg.Log.Level = "debug"
	return cfg
}

var client = &http.Client{Timeout: 30 * time.Second}

type response struct {
	status int
	header http.Header
	body   []byte
	closed bool // the server said Connection: close
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// errorCode is the code of a JSON error body.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.json(t, &e)
	if e.Error.Message == "" {
		t.Fatalf("error body without message: %s", r.body)
	}
	return e.Error.Code
}

func (a *testApp) do(t *testing.T, method, path string, body any, header ...string) response {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.api+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	if res.Header.Get("X-Request-Id") == "" || res.Header.Get("X-Process-Time") == "" {
		t.Fatalf("%s %s: response without X-Request-Id or X-Process-Time: %v", method, path, res.Header)
	}
	return response{status: res.StatusCode, header: res.Header, body: raw, closed: res.Close}
}

func (a *testApp) status(t *testing.T, url string) int {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// metric returns the value of the first series of name whose labels
// contain every given label pair (`code="5xx"`), or -1 if none.
func (a *testApp) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	res, err := client.Get(a.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sum, found := 0.0, false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		sum, found = sum+v, true
	}
	if !found {
		return -1
	}
	return sum
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
