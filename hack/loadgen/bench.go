package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

type benchOptions struct {
	dsn, pacerBin, out, only string
	extraConfig, loadBefore  string
	duration, warmup, hold   time.Duration
	conns, rounds            int
}

const (
	bareAddr      = "127.0.0.1:18081"
	cachedAddr    = "127.0.0.1:18080"
	cachedAdmin   = "127.0.0.1:19090"
	uncachedAddr  = "127.0.0.1:18082"
	uncachedAdmin = "127.0.0.1:19092"
	mixedAddr     = "127.0.0.1:18083"
	mixedAdmin    = "127.0.0.1:19093"
	seedUsers     = 10_000
	hotUsers      = 1_000 // fits the default cache (10,000 entries)
	// The mixed scenario's pacer-api holds mixedCacheEntries: the hot users
	// stay cached while reads of the other 9,000 mostly miss.
	mixedCacheEntries = 2_000
	mixedColdEvery    = 10 // one read in 10 is of a cold user
	batchReadSize     = 10
	maxPerConnLoop    = 2_000_000 // count bound of each load loop
)

func bench(ctx context.Context, o benchOptions) error {
	dsn, dir, cleanup, err := workspace(ctx, o.dsn, "pacer_bench")
	if err != nil {
		return err
	}
	defer cleanup()

	env := append(os.Environ(), "DATABASE_URL="+dsn)
	cached, err := startProcess(ctx, env, dir, "cached", o.pacerBin, configFile(dir, "cached", cachedAddr, cachedAdmin, "ttl: 30s", o.extraConfig))
	if err != nil {
		return err
	}
	defer cached.stop()
	uncached, err := startProcess(ctx, env, dir, "uncached", o.pacerBin, configFile(dir, "uncached", uncachedAddr, uncachedAdmin, "ttl: 0s", o.extraConfig))
	if err != nil {
		return err
	}
	defer uncached.stop()
	mixed, err := startProcess(ctx, env, dir, "mixed", o.pacerBin, configFile(dir, "mixed", mixedAddr, mixedAdmin,
		fmt.Sprintf("ttl: 30s\n  maxEntries: %d", mixedCacheEntries), o.extraConfig))
	if err != nil {
		return err
	}
	defer mixed.stop()
	self, _ := os.Executable()
	bare, err := startProcess(ctx, env, dir, "bare", self, "bare", "-addr", bareAddr)
	if err != nil {
		return err
	}
	defer bare.stop()
	for _, u := range []string{"http://" + cachedAdmin + "/readyz", "http://" + uncachedAdmin + "/readyz", "http://" + mixedAdmin + "/readyz", "http://" + bareAddr + "/const"} {
		if err := waitOK(ctx, u); err != nil {
			return err
		}
	}
	if err := seed("http://" + cachedAddr); err != nil {
		return err
	}

	getByID := func(base string, span int) request {
		return func(c, i int) (*http.Request, error) {
			id := 1 + (c*7919+i*104729)%span // spread deterministically
			return http.NewRequest("GET", fmt.Sprintf("%s/v1/users/%d", base, id), nil)
		}
	}
	// mixedRead reads a hot user, and every mixedColdEvery-th time a cold
	// one, spread pseudo-randomly over the users outside the hot set.
	mixedRead := func(base string) request {
		return func(c, i int) (*http.Request, error) {
			id := 1 + (c*7919+i*104729)%hotUsers
			if i%mixedColdEvery == mixedColdEvery-1 {
				x := (uint64(c)<<32 | uint64(i)) * 0x9E3779B97F4A7C15
				id = hotUsers + 1 + int((x^x>>29)%(seedUsers-hotUsers))
			}
			return http.NewRequest("GET", fmt.Sprintf("%s/v1/users/%d", base, id), nil)
		}
	}
	batchRead := func(base string) request {
		return func(c, i int) (*http.Request, error) {
			ids := make([]string, batchReadSize)
			for k := range ids {
				ids[k] = fmt.Sprint(1 + (c*7919+i*104729+k*15485863)%seedUsers)
			}
			return http.NewRequest("GET", base+"/v1/users?ids="+strings.Join(ids, ","), nil)
		}
	}
	create := func(base, tag string) request {
		var seq atomic.Int64 // emails stay unique across rounds
		return func(c, i int) (*http.Request, error) {
			body := fmt.Sprintf(`{"name":"bench","email":"%s-%d@example.com"}`, tag, seq.Add(1))
			req, err := http.NewRequest("POST", base+"/v1/users", strings.NewReader(body))
			if req != nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		}
	}
	bareURL, cachedURL, uncachedURL, mixedURL := "http://"+bareAddr, "http://"+cachedAddr, "http://"+uncachedAddr, "http://"+mixedAddr
	scenarios := []scenario{
		{name: "bare net/http, constant body", build: func(c, i int) (*http.Request, error) { return http.NewRequest("GET", bareURL+"/const", nil) }, status: 200, server: bare},
		{name: "bare GET by id (1 pgx query)", build: getByID(bareURL, seedUsers), status: 200, server: bare},
		{name: "pacer-api GET by id, uncached", build: getByID(uncachedURL, seedUsers), status: 200, server: uncached, pacer: true, vs: 1, target: 0.9},
		{name: "pacer-api GET by id, cached", build: getByID(cachedURL, hotUsers), status: 200, server: cached, pacer: true, vs: 0, target: 0.8},
		{name: "pacer-api GET by id, 90% hot / 10% cold", build: mixedRead(mixedURL), status: 200, server: mixed, pacer: true, vs: 0},
		{name: "bare batch read (10 ids)", build: batchRead(bareURL), status: 200, server: bare},
		{name: "pacer-api batch read (10 ids)", build: batchRead(cachedURL), status: 200, server: cached, pacer: true, vs: 5},
		{name: "bare create", build: create(bareURL, "bare"), status: 201, server: bare},
		{name: "pacer-api create", build: create(cachedURL, "pacer"), status: 201, server: cached, pacer: true, vs: 7},
	}
	results := make([]result, len(scenarios))
	o.loadBefore = loadAverage()
	// Each pair (baseline, pacer-api) runs in alternating rounds, ABBA, so
	// that load from anything else on the machine falls on both alike.
	for _, p := range pairs(scenarios) {
		for round := range o.rounds {
			order := p
			if round%2 == 1 {
				order = []int{p[1], p[0]}
			}
			for _, i := range order {
				s := scenarios[i]
				if ctx.Err() != nil {
					return ctx.Err()
				}
				if o.only != "" && !strings.Contains(s.name, o.only) {
					continue
				}
				fmt.Fprintf(os.Stderr, "round %d/%d: %-36s %d conns, %s\n", round+1, o.rounds, s.name, o.conns, o.duration/time.Duration(o.rounds))
				cpuBefore, pgBefore := s.server.cpu(), postgresCPU()
				r := closedLoop(ctx, o.conns, o.warmup, o.duration/time.Duration(o.rounds), maxPerConnLoop, s.build, s.status)
				// CPU over warm-up and measurement, per measured request:
				// warm-up requests are few and alike for both sides.
				r.cpu = s.server.cpu() - cpuBefore
				r.pgCPU = postgresCPU() - pgBefore
				r.cpuRequests = r.Requests + r.warmRequests
				if s.pacer {
					r.rss = s.server.rss()
				}
				results[i] = results[i].merge(r)
			}
		}
	}
	if o.hold > 0 {
		fmt.Fprintf(os.Stderr, "holding servers for %s (pprof on %s and %s)\n", o.hold, cachedAdmin, uncachedAdmin)
		select {
		case <-ctx.Done():
		case <-time.After(o.hold):
		}
	}
	table := render(o, scenarios, results)
	fmt.Print(table)
	if o.out != "" {
		if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(o.out, []byte(table), 0o644)
	}
	return nil
}

// pairs groups each pacer-api scenario with its baseline.
func pairs(scenarios []scenario) [][]int {
	var out [][]int
	for i, s := range scenarios {
		if s.pacer {
			out = append(out, []int{s.vs, i})
		}
	}
	return out
}

type scenario struct {
	name   string
	build  request
	status int
	server *process // the process serving it, for CPU and RSS
	pacer  bool     // a pacer-api row, compared with row vs
	vs     int      // index of the baseline row
	target float64  // minimum ratio of throughput to the baseline, 0 for none
}

// configFile writes a pacer-api config; cache is the body of its cache
// section (YAML, indented by two after its first line).
func configFile(dir, name, addr, admin, cache, extraConfig string) string {
	path := filepath.Join(dir, name+".yaml")
	body := fmt.Sprintf("server:\n  addr: %q\n  adminAddr: %q\n  enablePprof: true\ncache:\n  %s\nlog:\n  level: warn\n", addr, admin, cache) + extraConfig
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		panic(err)
	}
	return "--config=" + path
}

// requireLoopback refuses to send load anywhere but this machine.
func requireLoopback(dsn string) error {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return errors.New("DATABASE_URL is not a valid PostgreSQL URL")
	}
	if ip := net.ParseIP(cfg.Host); cfg.Host != "localhost" && (ip == nil || !ip.IsLoopback()) && !strings.HasPrefix(cfg.Host, "/") {
		return fmt.Errorf("DATABASE_URL must point at this machine (loopback), not %q", cfg.Host)
	}
	return nil
}

// workspace checks that dsn is on this machine and makes a fresh database
// named name on it and a temporary folder; cleanup drops and removes both.
func workspace(ctx context.Context, dsn, name string) (db, dir string, cleanup func(), err error) {
	if err := requireLoopback(dsn); err != nil {
		return "", "", nil, err
	}
	db, dropDB, err := freshDatabase(ctx, dsn, name)
	if err != nil {
		return "", "", nil, err
	}
	if dir, err = os.MkdirTemp("", name); err != nil {
		dropDB()
		return "", "", nil, err
	}
	return db, dir, func() { _ = os.RemoveAll(dir); dropDB() }, nil
}

func freshDatabase(ctx context.Context, dsn, name string) (string, func(), error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", nil, err
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", nil, err
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, err
	}
	u.Path = "/" + name
	drop := func() {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			c.Close(context.Background())
		}
	}
	return u.String(), drop, nil
}

func waitOK(ctx context.Context, u string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		res, err := http.Get(u)
		if err == nil {
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within 30s", u)
}

// seed creates seedUsers users through the batch endpoint.
func seed(base string) error {
	for b := 0; b < seedUsers/1000; b++ {
		var sb strings.Builder
		sb.WriteString(`{"users":[`)
		for i := range 1000 {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"name":"User %d","email":"seed-%d@example.com"}`, b*1000+i, b*1000+i)
		}
		sb.WriteString(`]}`)
		res, err := http.Post(base+"/v1/users/batch", "application/json", strings.NewReader(sb.String()))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != 201 {
			return fmt.Errorf("seed batch %d: status %d", b, res.StatusCode)
		}
	}
	return nil
}

type process struct {
	cmd *exec.Cmd
}

func startProcess(ctx context.Context, env []string, dir, name, bin string, args ...string) (*process, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &process{cmd: cmd}, nil
}

func (p *process) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

// cpu is the process's user+system CPU time so far.
func (p *process) cpu() time.Duration { return cpuOf(p.cmd.Process.Pid) }

// postgresCPU is the CPU time of every process named postgres (the server
// and its backends) so far: the database's share of each scenario.
func postgresCPU() time.Duration {
	entries, _ := os.ReadDir("/proc")
	var total time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == "postgres" {
			total += cpuOf(pid)
		}
	}
	return total
}

func cpuOf(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the ")" closing the command name; utime and stime are
	// the 14th and 15th fields of the line, in clock ticks (100 a second).
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	var utime, stime int64
	_, _ = fmt.Sscan(f[11], &utime)
	_, _ = fmt.Sscan(f[12], &stime)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// rss reads the process's resident and peak resident memory.
func (p *process) rss() string {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return "?"
	}
	var cur, peak string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			cur = f[1]
		}
		if len(f) >= 2 && f[0] == "VmHWM:" {
			peak = f[1]
		}
	}
	return fmt.Sprintf("%s / %s MiB", kib(cur), kib(peak))
}

func kib(s string) string {
	var v float64
	_, _ = fmt.Sscan(s, &v)
	return fmt.Sprintf("%.0f", v/1024)
}
