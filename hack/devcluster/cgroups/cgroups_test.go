package cgroups

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv makes the test binary a child process: "busy" spins, "hog"
// allocates memory until killed (both bounded, in case no limit stops them).
const childEnv = "PACER_CGROUPS_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "busy":
		for end := time.Now().Add(30 * time.Second); time.Now().Before(end); {
		}
		os.Exit(0)
	case "hog":
		var keep [][]byte
		for range 64 { // at most 1 GiB
			b := make([]byte, 16<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println(len(keep))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestKubeletConversions(t *testing.T) {
	for _, tc := range []struct{ milli, shares, weight, quota int64 }{
		{0, 2, 1, 0},
		{1, 2, 1, 1000}, // below the minimum quota
		{50, 51, 2, 5000},
		{200, 204, 8, 20000},
		{1000, 1024, 39, 100000},
		{2500, 2560, 98, 250000},
		{1000000, 262144, 10000, 100000000},
	} {
		if got := Shares(tc.milli); got != tc.shares {
			t.Errorf("Shares(%dm) = %d, want %d", tc.milli, got, tc.shares)
		}
		if got := Weight(Shares(tc.milli)); got != tc.weight {
			t.Errorf("Weight(Shares(%dm)) = %d, want %d", tc.milli, got, tc.weight)
		}
		if got := QuotaUs(tc.milli); got != tc.quota {
			t.Errorf("QuotaUs(%dm) = %d, want %d", tc.milli, got, tc.quota)
		}
	}
}

// manager is a cluster folder for the test, removed at its end. Without
// writable cgroups the test skips, except under CI=true, where it fails.
func manager(t *testing.T) *Manager {
	t.Helper()
	m, err := Detect(fmt.Sprintf("pacer-devcluster-test-%d", os.Getpid()))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroups: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	t.Cleanup(m.Remove)
	return m
}

func startChild(t *testing.T, g *Group, kind string) (*exec.Cmd, chan error) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), childEnv+"="+kind)
	g.Wrap(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if err := <-done; err == nil {
			t.Log("child exited cleanly before it was killed")
		}
	})
	return cmd, done
}

// waitMember waits for the shim to join the group (the program keeps the
// shim's pid), failing after a few seconds.
func waitMember(t *testing.T, g *Group, pid int) {
	t.Helper()
	for _, f := range g.ProcsFiles() {
		for deadline := time.Now().Add(5 * time.Second); ; {
			b, _ := os.ReadFile(f)
			if slices.Contains(strings.Fields(string(b)), strconv.Itoa(pid)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d not in %s: %q", pid, f, b)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// The cluster folder carries the top CPU weight, so the pods get their
// requests on a busy machine, as under a kubelet's kubepods cgroup.
func TestClusterFolderOutweighsOtherWork(t *testing.T) {
	m := manager(t)
	file, want := filepath.Join(m.base["cpu"], "cpu.shares"), int64(maxShares)
	if m.v2 {
		file, want = filepath.Join(m.base[""], "cpu.weight"), maxWeight
	}
	got, err := readInt(file)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s = %d, want %d", file, got, want)
	}
}

func TestCPUQuotaLimitsABusyLoop(t *testing.T) {
	m := manager(t)
	g, err := m.Container("uid-cpu", "busy", Limits{CPULimitMilli: 200, CPURequestMilli: 100})
	if err != nil {
		t.Fatal(err)
	}
	if !m.v2 {
		for file, want := range map[string]string{"cpu.cfs_quota_us": "20000", "cpu.cfs_period_us": "100000", "cpu.shares": "102"} {
			b, _ := os.ReadFile(filepath.Join(g.paths["cpu"], file))
			if strings.TrimSpace(string(b)) != want {
				t.Errorf("%s = %q, want %s", file, strings.TrimSpace(string(b)), want)
			}
		}
	}
	// The pod's group gets the pod's sums (here: its one container's), so
	// pods weigh against each other by their requests, as under a kubelet.
	if err := m.Pod("uid-cpu").Apply(Limits{CPULimitMilli: 200, CPURequestMilli: 100}); err != nil {
		t.Fatal(err)
	}
	if !m.v2 {
		b, _ := os.ReadFile(filepath.Join(m.Pod("uid-cpu").paths["cpu"], "cpu.shares"))
		if strings.TrimSpace(string(b)) != "102" {
			t.Errorf("pod cpu.shares = %q, want 102", strings.TrimSpace(string(b)))
		}
	}
	cmd, _ := startChild(t, g, "busy")
	waitMember(t, g, cmd.Process.Pid)
	time.Sleep(300 * time.Millisecond)
	u0, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(2 * time.Second)
	u1, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	cores := (u1.CPU - u0.CPU).Seconds() / time.Since(t0).Seconds()
	t.Logf("a busy loop under a 200m limit used %.2f cores (working set %d KiB)", cores, u1.WorkingSet>>10)
	// Generous bounds: the machine is shared, so only "well under one core,
	// and running" is checked; the throttle count shows the quota at work.
	if cores <= 0.02 || cores >= 0.5 {
		t.Errorf("busy loop used %.2f cores under a 200m quota; want about 0.2", cores)
	}
	if throttled := g.throttled(); throttled == 0 {
		t.Error("the group was never throttled")
	}
	if u1.WorkingSet <= 0 {
		t.Errorf("working set %d, want > 0", u1.WorkingSet)
	}
}

func TestMemoryLimitOOMKillsAHog(t *testing.T) {
	m := manager(t)
	g, err := m.Container("uid-mem", "hog", Limits{MemoryLimit: 32 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if n := g.OOMKills(); n != 0 {
		t.Fatalf("a new group has %d OOM kills", n)
	}
	_, done := startChild(t, g, "hog")
	var err2 error
	select {
	case err2 = <-done:
		done <- err2 // for the cleanup
	case <-time.After(60 * time.Second):
		t.Fatal("the hog was not stopped within 60s")
	}
	var exit *exec.ExitError
	if !errors.As(err2, &exit) {
		t.Fatalf("hog exited with %v; want killed", err2)
	}
	ws := exit.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("hog: %v; want killed by SIGKILL", err2)
	}
	if n := g.OOMKills(); n < 1 {
		t.Fatalf("OOM kills = %d after the hog was killed; want ≥ 1", n)
	}
}

func TestRemoveKillsAndRemovesThePod(t *testing.T) {
	m := manager(t)
	g, err := m.Container("uid-rm", "busy", Limits{CPULimitMilli: 100})
	if err != nil {
		t.Fatal(err)
	}
	cmd, done := startChild(t, g, "busy")
	waitMember(t, g, cmd.Process.Pid)
	if err := m.Pod("uid-rm").Remove(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("the process in the removed group still runs")
	}
	for _, p := range m.Pod("uid-rm").paths {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (%v)", p, err)
		}
	}
}
