package metrics

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/app"
	"github.com/pacer-dev/pacer/service/config"
)

// apiPod is a real pacer-api running in the test process, against the test
// PostgreSQL, standing in for one pod.
type apiPod struct {
	*app.App
	name       string
	api        string // base URL
	configPath string
	cfg        config.Config
	stop       func()
}

type podOptions struct {
	name      string
	dsn       string
	adminAddr string // default 127.0.0.1:0
	mutate    func(*config.Config)
}

func startPod(t *testing.T, o podOptions) *apiPod {
	t.Helper()
	cfg := config.Default()
	cfg.Server.Addr = "127.0.0.1:0"
	cfg.Server.AdminAddr = "127.0.0.1:0"
	if o.adminAddr != "" {
		cfg.Server.AdminAddr = o.adminAddr
	}
	cfg.Log.Format = "json"
	if o.mutate != nil {
		o.mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	p := &apiPod{name: o.name, cfg: cfg, configPath: filepath.Join(t.TempDir(), "config.yaml")}
	testenv.WriteConfig(t, p.configPath, cfg)

	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.Start(ctx, app.Options{
		Config: cfg, ConfigPath: p.configPath, LogOutput: logs,
		Getenv: func(k string) string {
			if k == cfg.Database.URLEnv {
				return o.dsn
			}
			return ""
		},
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.App, p.api = a, "http://"+a.APIAddr()
	done := make(chan error, 1)
	go func() { done <- a.Wait() }()
	var once sync.Once
	p.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Logf("pod %s stopped: %v", o.name, err)
				}
			case <-time.After(60 * time.Second):
				t.Errorf("pod %s did not stop within 60s", o.name)
			}
		})
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("pod %s logs:\n%s", o.name, logs.String())
		}
	})
	eventually(t, "pod "+o.name+" ready", func() bool { return status(p.AdminURL()+"/readyz") == http.StatusOK })
	return p
}

// AdminURL is the pod's admin base URL.
func (p *apiPod) AdminURL() string { return "http://" + p.AdminAddr() }

// Pod is the pod as a Target lists it.
func (p *apiPod) Pod() Pod {
	host, port, err := net.SplitHostPort(p.AdminAddr())
	if err != nil {
		panic(err)
	}
	n, _ := strconv.Atoi(port)
	return Pod{Name: p.name, Host: host, Port: int32(n)}
}

// setGeneration rewrites the config file with a new generation and reloads,
// as the operator's ConfigMap change does.
func (p *apiPod) setGeneration(t *testing.T, gen int64) {
	t.Helper()
	p.cfg.Generation = gen
	testenv.WriteConfig(t, p.configPath, p.cfg)
	if err := p.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	eventually(t, fmt.Sprintf("pod %s runs generation %d", p.name, gen), func() bool { return p.Config().Generation == gen })
}

// testPodsOptions are generous: tests run in parallel with others, under
// the race detector, on two shared cores.
var testPodsOptions = PodsOptions{Timeout: 20 * time.Second}

var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 32},
}

func status(url string) int {
	res, err := httpClient.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// tally counts responses by status code.
type tally struct {
	mu    sync.Mutex
	codes map[int]int
	errs  int
}

func (c *tally) add(code int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.codes == nil {
		c.codes = map[int]int{}
	}
	if err != nil {
		c.errs++
		return
	}
	c.codes[code]++
}

func (c *tally) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.codes {
		n += k
	}
	return n
}

func (c *tally) count(pred func(code int) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for code, k := range c.codes {
		if pred(code) {
			n += k
		}
	}
	return n
}

// traffic is a bounded load: n requests from `workers` goroutines, built by
// req(i), over at most maxTime; it returns once every response is in.
type traffic struct {
	n, workers int
	maxTime    time.Duration
	// pace, when set, is the pause between one worker's requests.
	pace time.Duration
	// stop, when set, ends the traffic early once closed.
	stop <-chan struct{}
	req  func(i int) (*http.Request, error)
}

func (tr traffic) run(t *testing.T) *tally {
	t.Helper()
	var (
		c    tally
		next = make(chan int)
		wg   sync.WaitGroup
	)
	deadline := time.Now().Add(tr.maxTime)
	for range tr.workers {
		wg.Go(func() {
			for i := range next {
				req, err := tr.req(i)
				if err != nil {
					c.add(0, err)
					continue
				}
				res, err := httpClient.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					c.add(res.StatusCode, nil)
				} else {
					c.add(0, err)
				}
				if tr.pace > 0 {
					time.Sleep(tr.pace)
				}
			}
		})
	}
	timeout := time.NewTimer(time.Until(deadline))
	defer timeout.Stop()
send:
	for i := range tr.n {
		select {
		case next <- i:
		case <-tr.stop:
			break send
		case <-timeout.C:
			break send
		}
	}
	close(next)
	wg.Wait()
	if c.errs > 0 {
		t.Errorf("%d requests failed in transport", c.errs)
	}
	return &c
}

func get(url string) func(int) (*http.Request, error) {
	return func(int) (*http.Request, error) { return http.NewRequest(http.MethodGet, url, nil) }
}

// createUsers makes n users through the API and returns their ids' URLs.
func createUsers(t *testing.T, p *apiPod, n int) []string {
	t.Helper()
	var urls []string
	for i := range n {
		body := fmt.Sprintf(`{"name":"user %d","email":"user-%d-%d@example.com"}`, i, i, time.Now().UnixNano())
		res, err := httpClient.Post(p.api+"/v1/users", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusCreated {
			t.Fatalf("create user: %d %s", res.StatusCode, raw)
		}
		var u struct {
			ID int64 `json:"id"`
		}
		if err := json.Unmarshal(raw, &u); err != nil || u.ID == 0 {
			t.Fatalf("create user: no id in %s (%v)", raw, err)
		}
		urls = append(urls, fmt.Sprintf("/v1/users/%d", u.ID))
	}
	return urls
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 60s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// within reports whether got is within frac of want.
func within(got, want, frac float64) bool {
	return got >= want*(1-frac) && got <= want*(1+frac)
}
