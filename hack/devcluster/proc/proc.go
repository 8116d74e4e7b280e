// Package proc starts the dev cluster's child processes so that they die
// with it, and cleans up after a dev cluster that was killed outright.
//
// Every child gets its own process group (so a stop signal reaches its own
// children too) and SIGKILL as its parent-death signal. Linux sends the
// parent-death signal when the thread that forked the child exits, not the
// process, so all children are forked from one goroutine locked to its OS
// thread for the life of the program.
package proc

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
)

type startRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var starts = make(chan startRequest)

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives as long as the process
		for r := range starts {
			r.done <- r.cmd.Start()
		}
	}()
}

// Start starts cmd in a new process group that is killed when this process dies.
func Start(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	done := make(chan error, 1)
	starts <- startRequest{cmd: cmd, done: done}
	return <-done
}

// SignalGroup sends sig to the process group led by pid.
func SignalGroup(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return errors.New("no process")
	}
	return syscall.Kill(-pid, sig)
}

// Stop sends SIGTERM to cmd's process group, waits up to grace for done to
// close (the caller's cmd.Wait returned), then sends SIGKILL and waits for done.
func Stop(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	if cmd.Process == nil {
		return
	}
	_ = SignalGroup(cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
	}
	// Kill the group in any case: a leader that exited may leave children.
	_ = SignalGroup(cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// DirPrefix names the dev cluster's working folders under the temp dir.
const DirPrefix = "pacer-devcluster-"

const ownerFile = "owner.pid"

// MakeDir creates a working folder for this process and records its pid,
// so a later run can tell it was left behind.
func MakeDir() (string, error) {
	dir, err := os.MkdirTemp("", DirPrefix)
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// CleanStale removes the working folders of dev clusters whose process is
// gone (killed with SIGKILL, or a crash), after killing every process whose
// command line still names such a folder. It returns the folders removed.
func CleanStale() []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), DirPrefix+"*"))
	var removed []string
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && alive(pid) {
				continue
			}
		} else if st, err := os.Stat(dir); err == nil && time.Since(st.ModTime()) < time.Minute {
			continue // being created right now
		}
		cgroups.RemoveStale(filepath.Base(dir))
		killReferencing(dir)
		if os.RemoveAll(dir) == nil {
			removed = append(removed, dir)
		}
	}
	return removed
}

// killReferencing kills every process of this user whose command line
// names dir, or a path inside it, as an argument or a flag's value
// (--data-dir=DIR/etcd). A name that merely starts with dir's (another
// dev cluster's folder, pacer-devcluster-12 for pacer-devcluster-1) does
// not count, and neither does another user's process.
func killReferencing(dir string) {
	dir = filepath.Clean(dir)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || !ownedByUs(pid) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if namesDir(strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00"), dir) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// ownedByUs reports whether pid runs as this process's user (/proc/PID
// belongs to the process's effective user).
func ownedByUs(pid int) bool {
	st, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	if err != nil {
		return false
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	return ok && int(sys.Uid) == os.Geteuid()
}

// namesDir reports whether one of args is dir or a path inside it, alone
// or as the value of a flag.
func namesDir(args []string, dir string) bool {
	inside := func(p string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
	for _, a := range args {
		if inside(a) {
			return true
		}
		if _, v, ok := strings.Cut(a, "="); ok && inside(v) {
			return true
		}
	}
	return false
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// reaperEnv names the folder a reaper process cleans up.
const reaperEnv = "PACER_DEVCLUSTER_REAP_DIR"

// reaperPipe is never read: holding it keeps the GC's finalizer from
// closing the pipe, which would wake the reaper early.
var reaperPipe *os.File //nolint:unused // see above

// StartReaper starts a copy of this program that waits for this process to
// die (its stdin, a pipe only this process writes, reaches EOF), then kills
// every process in the pods' cgroups or whose command line names dir, and
// removes the cgroups and dir. It covers an
// exit without cleanup (SIGKILL, a crash): children started with Start die
// with this process anyway, but etcd and kube-apiserver are started by
// envtest, which sets no parent-death signal. The reaper has its own
// process group, so Ctrl-C in a terminal does not stop it first.
func StartReaper(dir string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), reaperEnv+"="+dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	r.Close()
	reaperPipe = w
	go func() { _ = cmd.Wait() }()
	return nil
}

// RunReaperIfAsked turns this process into a reaper when it was started as one.
func RunReaperIfAsked() {
	dir := os.Getenv(reaperEnv)
	if dir == "" {
		return
	}
	signal.Ignore(syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	_, _ = io.Copy(io.Discard, os.Stdin)
	if _, err := os.Stat(dir); err == nil {
		// The pods' cgroups are named after the folder; removing them kills what is in them.
		cgroups.RemoveStale(filepath.Base(dir))
		killReferencing(dir)
		_ = os.RemoveAll(dir)
	}
	os.Exit(0)
}
