package proc

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// sleeper starts a process whose command line names arg (as argv[0]),
// as etcd's names its data folder, and returns a channel closed when it
// has exited.
func sleeper(t *testing.T, arg string, cred *syscall.Credential) (*exec.Cmd, <-chan struct{}) {
	t.Helper()
	path, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: path, Args: []string{arg, "60"}, SysProcAttr: &syscall.SysProcAttr{Credential: cred}}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	return cmd, done
}

func exited(done <-chan struct{}) bool {
	select {
	case <-done:
		return true
	case <-time.After(2 * time.Second):
		return false
	}
}

// Issue 20, "dev cluster cleanup": the processes of a stale folder were
// found by substring, so cleaning pacer-devcluster-1 also killed the live
// cluster of pacer-devcluster-12. Now only a process naming the folder
// itself (or a path in it) dies, and only one of this user.
func TestKillReferencingMatchesTheFolderExactly(t *testing.T) {
	base := t.TempDir()
	stale, live := filepath.Join(base, DirPrefix+"1"), filepath.Join(base, DirPrefix+"12")
	for _, d := range []string{stale, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_, staleDone := sleeper(t, stale+"/etcd", nil)
	_, flagDone := sleeper(t, "--data-dir="+stale, nil)
	_, liveDone := sleeper(t, live+"/etcd", nil)
	_, liveFlagDone := sleeper(t, "--data-dir="+live+"/data", nil)

	killReferencing(stale)

	if !exited(staleDone) || !exited(flagDone) {
		t.Fatal("a process of the stale folder survived")
	}
	for _, done := range []<-chan struct{}{liveDone, liveFlagDone} {
		select {
		case <-done:
			t.Fatal("a process of the live folder " + live + " was killed")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Another user's process naming the folder is not ours to kill.
func TestKillReferencingSparesOtherUsers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("starting a process as another user needs root")
	}
	stale := filepath.Join(t.TempDir(), DirPrefix+"1")
	_, done := sleeper(t, stale+"/etcd", &syscall.Credential{Uid: 65534, Gid: 65534})
	killReferencing(stale)
	select {
	case <-done:
		t.Fatal("another user's process was killed")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestNamesDir(t *testing.T) {
	const dir = "/tmp/pacer-devcluster-1"
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"etcd", "--data-dir=/tmp/pacer-devcluster-1/etcd"}, true},
		{[]string{"/tmp/pacer-devcluster-1/bin/kube-apiserver"}, true},
		{[]string{"x", "/tmp/pacer-devcluster-1"}, true},
		{[]string{"etcd", "--data-dir=/tmp/pacer-devcluster-12/etcd"}, false},
		{[]string{"/tmp/pacer-devcluster-1x"}, false},
		{[]string{"grep", "pacer-devcluster-1"}, false},
	} {
		if got := namesDir(tt.args, dir); got != tt.want {
			t.Errorf("namesDir(%q) = %v, want %v", tt.args, got, tt.want)
		}
	}
}
