package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// instructions counts the user-space instructions one uncached read
// (GET /v1/users/{id}, cache off) costs pacer-api and the bare baseline,
// under valgrind's callgrind. Unlike CPU time, the count hardly moves with
// what else runs on the machine, so two builds can be compared on a busy
// one. It leaves out the kernel's share (the same system calls per request
// for both: see docs/service.md) and contention between cores (callgrind
// runs one thread at a time).
type instructionsOptions struct {
	pacerBin string
	dsn      string
	requests int // per measurement; each server is measured at requests and 3×requests
	conns    int
	repeats  int
	out      string
}

// instrUsers is how many of the seeded users the reads go round.
const instrUsers = 1000

func instructions(ctx context.Context, o instructionsOptions) error {
	for _, tool := range []string{"valgrind", "callgrind_control"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s not found (Debian: apt-get install valgrind)", tool)
		}
	}
	dsn, dir, cleanup, err := workspace(ctx, o.dsn, "pacer_bench_instr")
	if err != nil {
		return err
	}
	defer cleanup()
	// callgrind cannot follow Go's asynchronous preemption signals.
	env := append(os.Environ(), "DATABASE_URL="+dsn, "GODEBUG=asyncpreemptoff=1")
	pacerArgs := []string{o.pacerBin, configFile(dir, "uncached", uncachedAddr, uncachedAdmin, "ttl: 0s", "")}
	self, _ := os.Executable()
	bareArgs := []string{self, "bare", "-addr", bareAddr, "-pprof-addr", ""}

	// Migrate and seed with a plain pacer-api first.
	p, err := startProcess(ctx, env, dir, "seed", pacerArgs[0], pacerArgs[1:]...)
	if err != nil {
		return err
	}
	err = waitOK(ctx, "http://"+uncachedAdmin+"/readyz")
	if err == nil {
		err = seed("http://" + uncachedAddr)
	}
	p.stop()
	if err != nil {
		return err
	}

	perRequest := map[string][]float64{}
	for r := 0; r < o.repeats; r++ {
		for _, s := range []struct {
			name, base, ready string
			args              []string
		}{
			{"bare", "http://" + bareAddr, "http://" + bareAddr + "/const", bareArgs},
			{"pacer-api", "http://" + uncachedAddr, "http://" + uncachedAdmin + "/readyz", pacerArgs},
		} {
			n, err := countOne(ctx, env, dir, fmt.Sprintf("%s-%d", s.name, r), s.args, s.base, s.ready, o)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			perRequest[s.name] = append(perRequest[s.name], n)
			fmt.Fprintf(os.Stderr, "%s run %d: %.0f instructions per read\n", s.name, r+1, n)
		}
	}
	report := instructionsReport(perRequest, o)
	fmt.Print(report)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(report), 0o644)
	}
	return nil
}

// countOne starts one server under callgrind, warms it, and returns its
// instructions per read: the difference between a run of 3×requests and
// one of requests, over 2×requests, so start-up, warm-up and shutdown
// cancel out.
func countOne(ctx context.Context, env []string, dir, name string, args []string, base, ready string, o instructionsOptions) (float64, error) {
	out := filepath.Join(dir, "callgrind."+name)
	vg := append([]string{"--tool=callgrind", "--callgrind-out-file=" + out}, args...)
	p, err := startProcess(ctx, env, dir, name, "valgrind", vg...)
	if err != nil {
		return 0, err
	}
	// callgrind cannot deliver Go's signal-driven shutdown either: kill it.
	defer func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() }()
	if err := waitOK(ctx, ready); err != nil {
		return 0, err
	}
	if err := readN(base, o.requests/2, o.conns); err != nil { // pool connections, statement cache
		return 0, err
	}
	var totals [2]float64
	for i, n := range []int{o.requests, 3 * o.requests} {
		pid := strconv.Itoa(p.cmd.Process.Pid)
		if err := exec.CommandContext(ctx, "callgrind_control", "-z", pid).Run(); err != nil {
			return 0, fmt.Errorf("callgrind_control -z: %w", err)
		}
		if err := readN(base, n, o.conns); err != nil {
			return 0, err
		}
		if err := exec.CommandContext(ctx, "callgrind_control", "-d", pid).Run(); err != nil {
			return 0, fmt.Errorf("callgrind_control -d: %w", err)
		}
		t, err := dumpTotal(out, i+1)
		if err != nil {
			return 0, err
		}
		totals[i] = t
	}
	return (totals[1] - totals[0]) / float64(2*o.requests), nil
}

// dumpTotal waits for callgrind's dump number n of out (written as out.n)
// and returns its instruction total.
func dumpTotal(out string, n int) (float64, error) {
	path := fmt.Sprintf("%s.%d", out, n)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		raw, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, "totals: "); ok {
				return strconv.ParseFloat(strings.Fields(v)[0], 64)
			}
		}
	}
	return 0, fmt.Errorf("no callgrind dump %s within a minute", path)
}

// readN sends exactly n uncached reads over conns keep-alive connections,
// each answer read to the end; any answer but 200 is an error.
func readN(base string, n, conns int) error {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				res, err := client.Get(fmt.Sprintf("%s/v1/users/%d", base, 1+i%instrUsers))
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", res.StatusCode)
					}
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

func instructionsReport(perRequest map[string][]float64, o instructionsOptions) string {
	median := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	var b strings.Builder
	fmt.Fprintf(&b, "User-space instructions per uncached read (GET /v1/users/{id}), callgrind, %d reads measured per run over %d connections, %d runs each, alternating (%s).\n\n",
		2*o.requests, o.conns, o.repeats, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	b.WriteString("| server | per run | median | vs bare |\n| --- | --- | ---: | ---: |\n")
	bare := median(perRequest["bare"])
	for _, name := range []string{"bare", "pacer-api"} {
		runs := make([]string, len(perRequest[name]))
		for i, v := range perRequest[name] {
			runs[i] = fmt.Sprintf("%.0f", v)
		}
		m := median(perRequest[name])
		fmt.Fprintf(&b, "| %s | %s | %.0f | %.3f× |\n", name, strings.Join(runs, ", "), m, m/bare)
	}
	return b.String()
}
