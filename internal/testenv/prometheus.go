package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// PrometheusBinEnv names the Prometheus binary tests start
// (`export PACER_TEST_PROMETHEUS_BIN=$(hack/prometheus.sh)`).
const PrometheusBinEnv = "PACER_TEST_PROMETHEUS_BIN"

// PrometheusBin returns the Prometheus binary, or skips (fails in CI).
func PrometheusBin(t testing.TB) string {
	t.Helper()
	return require(t, PrometheusBinEnv, "hack/prometheus.sh")
}

// PrometheusTarget is one endpoint the test Prometheus scrapes, with the
// target labels it attaches to every series (for example namespace and
// pod, as a PodMonitor does).
type PrometheusTarget struct {
	// Addr is host:port; the path is /metrics.
	Addr   string
	Labels map[string]string
}

// PrometheusOptions configure StartPrometheus.
type PrometheusOptions struct {
	// ScrapeInterval is the global scrape (and evaluation) interval;
	// default 1s.
	ScrapeInterval time.Duration
	Targets        []PrometheusTarget
}

// Prometheus is a Prometheus server started for one test.
type Prometheus struct {
	// URL is the base URL of its HTTP API, on loopback.
	URL string
}

// StartPrometheus starts the binary from PACER_TEST_PROMETHEUS_BIN on a
// free loopback port, with a config scraping o.Targets and a data directory
// of its own, waits until it is ready, and stops it when the test ends.
func StartPrometheus(t testing.TB, o PrometheusOptions) *Prometheus {
	t.Helper()
	bin := PrometheusBin(t)
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	dir := t.TempDir()
	configPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(configPath, prometheusConfig(t, o), 0o600); err != nil {
		t.Fatal(err)
	}

	// The port is free when chosen; another process may take it before
	// Prometheus binds, so try a few.
	var lastErr error
	for range 3 {
		addr := freeLoopbackAddr(t)
		logs := &lockedBuffer{}
		cmd := exec.Command(bin,
			"--config.file="+configPath,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address="+addr,
			"--storage.tsdb.retention.time=1h",
			"--log.level=warn",
		)
		cmd.Stdout, cmd.Stderr = logs, logs
		dieWithParent(cmd)
		if err := cmd.Start(); err != nil {
			t.Fatalf("testenv: start %s: %v", bin, err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		}
		url := "http://" + addr
		if lastErr = waitReady(url, exited); lastErr == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("prometheus logs:\n%s", logs.String())
				}
			})
			return &Prometheus{URL: url}
		}
		stop()
		lastErr = fmt.Errorf("%w\nlogs:\n%s", lastErr, logs.String())
	}
	t.Fatalf("testenv: prometheus did not start: %v", lastErr)
	return nil
}

func prometheusConfig(t testing.TB, o PrometheusOptions) []byte {
	t.Helper()
	type staticConfig struct {
		Targets []string          `json:"targets"`
		Labels  map[string]string `json:"labels,omitempty"`
	}
	var statics []staticConfig
	for _, target := range o.Targets {
		statics = append(statics, staticConfig{Targets: []string{target.Addr}, Labels: target.Labels})
	}
	interval := o.ScrapeInterval.String()
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     interval,
			"scrape_timeout":      interval,
			"evaluation_interval": interval,
		},
		"scrape_configs": []any{map[string]any{
			"job_name":       "pacer-api",
			"metrics_path":   "/metrics",
			"static_configs": statics,
		}},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1:" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// waitReady polls /-/ready until it answers 200, the process exits or a
// minute passes.
func waitReady(url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("prometheus exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/-/ready", nil)
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				cancel()
				return nil
			}
		}
		cancel()
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("prometheus not ready within 1m")
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
