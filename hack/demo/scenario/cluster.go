// Package scenario drives Pacer end to end on the dev cluster: it starts
// bin/devcluster (control plane, node agent, manager), prepares a database
// and a TunedService, sends load through the Service's endpoints in phases,
// samples what the tuner does, and writes a report. `make demo` and the
// end-to-end test (test/e2e) share it.
package scenario

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// ClusterOptions say how to start the dev cluster.
type ClusterOptions struct {
	// Devcluster is the dev cluster binary (bin/devcluster).
	Devcluster string
	// Assets is the folder of control-plane binaries (hack/envtest-assets.sh).
	Assets string
	// PacerAPI and Manager are the binaries the cluster runs.
	PacerAPI, Manager string
	// CRDs is the CRD folder.
	CRDs string
	// Log receives the dev cluster's stderr.
	Log io.Writer
}

// Cluster is a running dev cluster.
type Cluster struct {
	cmd        *exec.Cmd
	done       chan struct{}
	Kubeconfig string
	Client     client.Client
	// PodLimits is the dev cluster's word on pod limits: "enforced (…)" or
	// "not enforced: <why>".
	PodLimits string
	// ResourceMetrics is the dev cluster's word on metrics.k8s.io
	// (metrics-server): "ready" or "unavailable: <why>".
	ResourceMetrics string
}

// Scheme has the built-in types and TunedService.
var Scheme = func() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := pacerv1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// StartCluster runs the dev cluster and waits until it is ready.
func StartCluster(ctx context.Context, o ClusterOptions) (*Cluster, error) {
	args := []string{"--image", "pacer-api=" + o.PacerAPI, "--crds", o.CRDs}
	if o.Assets != "" {
		args = append(args, "--assets", o.Assets)
	}
	if o.Manager != "" {
		args = append(args, "--manager", o.Manager)
	}
	cmd := exec.Command(o.Devcluster, args...)
	cmd.Stderr = o.Log
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := startChild(cmd); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Devcluster, err)
	}
	c := &Cluster{cmd: cmd, done: make(chan struct{})}
	// Buffered: the few lines before "dev cluster ready" must all arrive
	// (an unbuffered send that skips a busy reader dropped the ready line
	// now and then, and the start timed out); lines after it, which nobody
	// reads, are dropped once the buffer is full, so the copy never blocks.
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		_ = cmd.Wait()
		close(c.done)
	}()
	timeout := time.After(4 * time.Minute)
	for {
		select {
		case line := <-lines:
			if p, ok := strings.CutPrefix(line, "kubeconfig: "); ok {
				c.Kubeconfig = p
			}
			if p, ok := strings.CutPrefix(line, "pod limits: "); ok {
				c.PodLimits = p
			}
			if p, ok := strings.CutPrefix(line, "resource metrics: "); ok {
				c.ResourceMetrics = p
			}
			if line == "dev cluster ready" {
				cfg, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
				if err != nil {
					c.Stop()
					return nil, err
				}
				cfg.QPS, cfg.Burst = 50, 100
				if c.Client, err = client.New(cfg, client.Options{Scheme: Scheme}); err != nil {
					c.Stop()
					return nil, err
				}
				return c, nil
			}
		case <-c.done:
			return nil, errors.New("the dev cluster exited before it was ready (its log is above)")
		case <-timeout:
			c.Stop()
			return nil, errors.New("the dev cluster was not ready within 4 minutes")
		case <-ctx.Done():
			c.Stop()
			return nil, ctx.Err()
		}
	}
}

// Stop stops the dev cluster (SIGTERM, which stops the manager, the pods
// and the control plane and removes its folder) and waits for it.
func (c *Cluster) Stop() {
	if c == nil || c.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(c.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(90 * time.Second):
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
	}
}

// startChild starts cmd in its own process group with SIGKILL as its
// parent-death signal, from a goroutine locked to its thread: Linux sends
// the signal when the forking thread exits, so that thread must not exit
// while the child runs. The dev cluster then cleans up its own children.
func startChild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the program
		errc <- cmd.Start()
		<-make(chan struct{})
	}()
	return <-errc
}

// Dir is the dev cluster's working folder.
func (c *Cluster) Dir() string { return filepath.Dir(c.Kubeconfig) }

// Running lists processes whose command line mentions dir, a dev
// cluster's folder (for the check that teardown leaves nothing behind).
func Running(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cl := strings.ReplaceAll(string(b), "\x00", " ")
		if strings.Contains(cl, dir) {
			out = append(out, e.Name()+": "+cl)
		}
	}
	return out
}
