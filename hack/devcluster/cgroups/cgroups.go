// Package cgroups gives each pod container of the dev cluster its own
// cgroup with the limits a kubelet would set: limits.cpu as a CFS quota,
// requests.cpu as CPU shares (weight on v2), limits.memory as the memory
// limit. It reads usage and OOM kills back from the same cgroups.
//
// It works on cgroup v1 (the cpu, cpuacct and memory hierarchies, mounted
// together or apart) and on a pure cgroup v2 hierarchy. Everything lives
// under one folder per dev cluster, created below the dev cluster's own
// cgroup in each hierarchy:
//
//	<own cgroup>/<cluster>/pod<uid>/<container>
package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Root is where the cgroup hierarchies are mounted.
const Root = "/sys/fs/cgroup"

// Limits are a container's resources, as a kubelet turns them into cgroup settings.
type Limits struct {
	// CPULimitMilli is limits.cpu in millicores; 0: no quota.
	CPULimitMilli int64
	// CPURequestMilli is requests.cpu in millicores; 0: the minimum shares.
	CPURequestMilli int64
	// MemoryLimit is limits.memory in bytes; 0: no limit.
	MemoryLimit int64
}

// The kubelet's constants (pkg/kubelet/cm/helpers_linux.go).
const (
	minShares     = 2
	maxShares     = 262144
	sharesPerCPU  = 1024
	quotaPeriodUs = 100000
	minQuotaUs    = 1000
)

// Shares is the kubelet's MilliCPUToShares: requests.cpu as cgroup v1 cpu.shares.
func Shares(milliCPU int64) int64 {
	if milliCPU == 0 {
		return minShares
	}
	return min(max(milliCPU*sharesPerCPU/1000, minShares), maxShares)
}

// Weight is the kubelet's (runc's) conversion of cpu.shares to cgroup v2 cpu.weight.
func Weight(shares int64) int64 {
	return 1 + ((shares-2)*9999)/262142
}

// QuotaUs is the kubelet's MilliCPUToQuota for the default 100ms period: 0 means no quota.
func QuotaUs(milliCPU int64) int64 {
	if milliCPU == 0 {
		return 0
	}
	return max(milliCPU*quotaPeriodUs/1000, minQuotaUs)
}

// Manager creates the cgroups of one dev cluster.
type Manager struct {
	v2 bool
	// base is this cluster's folder per controller (v1: "cpu", "cpuacct",
	// "memory"; v2: one entry, ""), all under its own cgroup.
	base map[string]string
}

var v1Controllers = []string{"cpu", "cpuacct", "memory"}

// Detect finds a writable cgroup hierarchy and creates the cluster's
// folder, named name, in it. When none is writable it returns an error that
// says why; the dev cluster then runs pods without limits.
func Detect(name string) (*Manager, error) {
	m, err := locate(name)
	if err != nil {
		return nil, err
	}
	for _, d := range m.base {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			m.Remove()
			return nil, fmt.Errorf("cgroups not writable: %w", err)
		}
	}
	if err := m.outweighOtherWork(); err != nil {
		m.Remove()
		return nil, err
	}
	if m.v2 {
		// Children of the cluster folder (pods, then containers) get the controllers.
		own := filepath.Dir(m.base[""])
		for _, d := range []string{own, m.base[""]} {
			if err := os.WriteFile(filepath.Join(d, "cgroup.subtree_control"), []byte("+cpu +memory"), 0o644); err != nil {
				m.Remove()
				return nil, fmt.Errorf("cgroup v2: enabling cpu and memory in %s: %w (run the dev cluster in a delegated cgroup with no other processes, e.g. systemd-run --scope -p Delegate=yes)", d, err)
			}
		}
	}
	return m, nil
}

// maxWeight is cgroup v2's top cpu.weight (v1's top cpu.shares is maxShares).
const maxWeight = 10000

// outweighOtherWork gives the cluster folder the top CPU weight. On a
// node, the kubelet's kubepods cgroup holds the node's allocatable CPU
// against a few system slices, so a pod's request is what it gets when the
// node is busy. Here the folder competes with every process of a shared
// machine (compilers, tests: often a dozen runnable), and with the default
// weight a 200m pod got well under 200m, so adding replicas added no
// capacity. The pods' own quotas still cap what they take.
func (m *Manager) outweighOtherWork() error {
	file, val := filepath.Join(m.base["cpu"], "cpu.shares"), maxShares
	if m.v2 {
		file, val = filepath.Join(m.base[""], "cpu.weight"), maxWeight
	}
	if err := os.WriteFile(file, []byte(strconv.Itoa(val)), 0o644); err != nil {
		return fmt.Errorf("cgroups: setting the cluster's CPU weight: %w", err)
	}
	return nil
}

// Locate finds the cluster folder's paths without creating anything (for
// cleaning up after a dead dev cluster, which ran in the same cgroups).
func locate(name string) (*Manager, error) {
	own, err := ownCgroups()
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(Root, "cgroup.controllers")); err == nil {
		b, err := os.ReadFile(filepath.Join(Root, "cgroup.controllers"))
		if err != nil {
			return nil, err
		}
		fields := strings.Fields(string(b))
		if !slices.Contains(fields, "cpu") || !slices.Contains(fields, "memory") {
			return nil, fmt.Errorf("cgroup v2 without the cpu and memory controllers (have: %s)", strings.Join(fields, " "))
		}
		return &Manager{v2: true, base: map[string]string{"": filepath.Join(Root, own[""], name)}}, nil
	}
	m := &Manager{base: map[string]string{}}
	for _, c := range v1Controllers {
		mount := filepath.Join(Root, c)
		if _, err := os.Stat(mount); err != nil {
			return nil, fmt.Errorf("no cgroup v1 %s hierarchy at %s and no cgroup v2 at %s", c, mount, Root)
		}
		// The cgroup this process is in, if that folder is visible; the
		// hierarchy's root otherwise (a container sees its own cgroup as /).
		dir := filepath.Join(mount, own[c])
		if _, err := os.Stat(dir); err != nil {
			dir = mount
		}
		m.base[c] = filepath.Join(dir, name)
	}
	return m, nil
}

// ownCgroups reads /proc/self/cgroup: controller → path (v2: "" → path).
func ownCgroups() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
		}
		for c := range strings.SplitSeq(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

// String says what the manager uses, for the dev cluster's start-up line.
func (m *Manager) String() string {
	if m.v2 {
		return "cgroup v2 at " + m.base[""]
	}
	return "cgroup v1 (cpu, cpuacct, memory) at " + m.base["cpu"] + ", " + m.base["memory"]
}

// Group is one container's cgroup.
type Group struct {
	v2    bool
	paths map[string]string // controller → folder
}

// Pod returns the folder set of a pod (a parent of its containers' groups).
func (m *Manager) Pod(uid string) *Group {
	return m.sub("pod" + uid)
}

func (m *Manager) sub(rel string) *Group {
	g := &Group{v2: m.v2, paths: map[string]string{}}
	for c, b := range m.base {
		g.paths[c] = filepath.Join(b, rel)
	}
	return g
}

// Container creates the cgroup of one container of a pod and applies its limits.
func (m *Manager) Container(podUID, container string, l Limits) (*Group, error) {
	pod := m.Pod(podUID)
	g := m.sub(filepath.Join("pod"+podUID, container))
	for c := range g.paths {
		if err := os.MkdirAll(g.paths[c], 0o755); err != nil {
			return nil, err
		}
		if m.v2 {
			if err := os.WriteFile(filepath.Join(pod.paths[c], "cgroup.subtree_control"), []byte("+cpu +memory"), 0o644); err != nil {
				return nil, err
			}
		}
	}
	if err := g.Apply(l); err != nil {
		_ = g.Remove()
		return nil, err
	}
	return g, nil
}

// Apply sets the group's limits. For a pod's group (Pod, once a container's
// group exists), the kubelet sets the sums of its containers': the shares of
// all requests, and a quota or memory limit when every container has one.
func (g *Group) Apply(l Limits) error {
	write := func(controller, file, value string) error {
		if err := os.WriteFile(filepath.Join(g.paths[controller], file), []byte(value), 0o644); err != nil {
			return fmt.Errorf("set %s: %w", file, err)
		}
		return nil
	}
	shares := Shares(l.CPURequestMilli)
	quota := QuotaUs(l.CPULimitMilli)
	if g.v2 {
		max := "max"
		if quota > 0 {
			max = strconv.FormatInt(quota, 10)
		}
		if err := write("", "cpu.max", fmt.Sprintf("%s %d", max, quotaPeriodUs)); err != nil {
			return err
		}
		if err := write("", "cpu.weight", strconv.FormatInt(Weight(shares), 10)); err != nil {
			return err
		}
		if l.MemoryLimit > 0 {
			return write("", "memory.max", strconv.FormatInt(l.MemoryLimit, 10))
		}
		return nil
	}
	if err := write("cpu", "cpu.shares", strconv.FormatInt(shares, 10)); err != nil {
		return err
	}
	if quota > 0 {
		if err := write("cpu", "cpu.cfs_period_us", strconv.Itoa(quotaPeriodUs)); err != nil {
			return err
		}
		if err := write("cpu", "cpu.cfs_quota_us", strconv.FormatInt(quota, 10)); err != nil {
			return err
		}
	}
	if l.MemoryLimit > 0 {
		return write("memory", "memory.limit_in_bytes", strconv.FormatInt(l.MemoryLimit, 10))
	}
	return nil
}

// ProcsFiles are the cgroup.procs files a process writes its pid to, to join the group.
func (g *Group) ProcsFiles() []string {
	var out []string
	for _, p := range g.paths {
		out = append(out, filepath.Join(p, "cgroup.procs"))
	}
	return out
}

// procsEnv carries the cgroup.procs files to the shim.
const procsEnv = "PACER_CGROUP_PROCS"

// shim writes its pid to each cgroup.procs file (one per line in
// $PACER_CGROUP_PROCS), then execs the program in its place (same pid): the
// program runs in its cgroup from its first instruction, with no window in
// which it could use CPU or memory outside its limits.
const shim = `IFS='
'; for f in $` + procsEnv + `; do echo $$ > "$f" || exit 127; done; unset ` + procsEnv + `; exec "$0" "$@"`

// Wrap makes cmd start through a /bin/sh shim that joins the group first.
// Start cmd as usual; its pid is the program's.
func (g *Group) Wrap(cmd *exec.Cmd) {
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, procsEnv+"="+strings.Join(g.ProcsFiles(), "\n"))
	cmd.Args = append([]string{"/bin/sh", "-c", shim, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = "/bin/sh"
}

// Usage is a group's CPU time and memory working set (usage less inactive
// file cache, as the kubelet reports it), its children included.
type Usage struct {
	CPU        time.Duration
	WorkingSet int64
}

// Usage reads the group's usage.
func (g *Group) Usage() (Usage, error) {
	var u Usage
	if g.v2 {
		stat, err := readKeyed(filepath.Join(g.paths[""], "cpu.stat"))
		if err != nil {
			return u, err
		}
		u.CPU = time.Duration(stat["usage_usec"]) * time.Microsecond
		cur, err := readInt(filepath.Join(g.paths[""], "memory.current"))
		if err != nil {
			return u, err
		}
		mem, err := readKeyed(filepath.Join(g.paths[""], "memory.stat"))
		if err != nil {
			return u, err
		}
		u.WorkingSet = max(cur-mem["inactive_file"], 0)
		return u, nil
	}
	ns, err := readInt(filepath.Join(g.paths["cpuacct"], "cpuacct.usage"))
	if err != nil {
		return u, err
	}
	u.CPU = time.Duration(ns)
	cur, err := readInt(filepath.Join(g.paths["memory"], "memory.usage_in_bytes"))
	if err != nil {
		return u, err
	}
	mem, err := readKeyed(filepath.Join(g.paths["memory"], "memory.stat"))
	if err != nil {
		return u, err
	}
	u.WorkingSet = max(cur-mem["total_inactive_file"], 0)
	return u, nil
}

// OOMKills is how many processes the kernel's OOM killer has killed in the group.
func (g *Group) OOMKills() int64 {
	var m map[string]int64
	if g.v2 {
		m, _ = readKeyed(filepath.Join(g.paths[""], "memory.events"))
	} else {
		m, _ = readKeyed(filepath.Join(g.paths["memory"], "memory.oom_control"))
	}
	return m["oom_kill"]
}

// Remove kills what is left in the group and its children and removes
// their folders, deepest first.
func (g *Group) Remove() error {
	var errs []error
	for _, p := range g.paths {
		errs = append(errs, removeTree(p))
	}
	return errors.Join(errs...)
}

// Remove removes the whole cluster folder (every pod's group).
func (m *Manager) Remove() {
	for _, b := range m.base {
		_ = removeTree(b)
	}
}

// RemoveStale removes the cluster folder named name left by a dead dev
// cluster that ran in this process's cgroups, killing what is left in it.
func RemoveStale(name string) {
	if m, err := locate(name); err == nil {
		m.Remove()
	}
}

// removeTree kills the processes in dir and below and removes the folders.
// A killed process leaves its cgroup only once it is reaped, so rmdir is
// retried for a moment.
func removeTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, removeTree(filepath.Join(dir, e.Name())))
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs")); err == nil {
		for f := range strings.FieldsSeq(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for i := 0; ; i++ {
		err := syscall.Rmdir(dir)
		if err == nil || errors.Is(err, syscall.ENOENT) {
			return errors.Join(errs...)
		}
		if i == 50 {
			return errors.Join(append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))...)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// readKeyed reads a "key value" per line file (cpu.stat, memory.stat, memory.events, memory.oom_control).
func readKeyed(path string) (map[string]int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

// throttled is how many CFS periods the group was throttled in.
func (g *Group) throttled() int64 {
	p := filepath.Join(g.paths["cpu"], "cpu.stat")
	if g.v2 {
		p = filepath.Join(g.paths[""], "cpu.stat")
	}
	m, _ := readKeyed(p)
	return m["nr_throttled"]
}
