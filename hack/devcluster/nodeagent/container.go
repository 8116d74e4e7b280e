package nodeagent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
	"github.com/pacer-dev/pacer/hack/devcluster/proc"
)

// Restart back-off of crashed containers: like the kubelet's (doubling up to
// a cap, reset after a while running well) but shorter, for a dev machine.
const (
	backoffInitial = 2 * time.Second
	backoffMax     = 60 * time.Second
	backoffReset   = 2 * time.Minute
)

// container is one container of a pod, run as a local process, restarted
// with back-off, with its readiness and liveness probes.
type container struct {
	pod    *podRuntime
	spec   corev1.Container // env resolved, paths mapped
	binary string
	group  *cgroups.Group // nil: no limits

	// guarded by pod.mu
	cmd          *exec.Cmd
	exited       chan struct{} // closed when the current process has been waited for
	running      bool
	startedAt    time.Time
	restartCount int32
	ready        bool
	lastTerm     *corev1.ContainerStateTerminated
	waiting      *corev1.ContainerStateWaiting
	final        *corev1.ContainerStateTerminated // set when the container will not run again
	killReason   string                           // why the agent is killing the current process
	loopDone     chan struct{}
	readyOK      int32
	readyFail    int32
	liveFail     int32
}

// run starts the process and restarts it per the pod's restart policy
// until the pod terminates. It returns when the container will not run again.
func (c *container) run(stop <-chan struct{}) {
	defer close(c.loopDone)
	backoff := backoffInitial
	for {
		select {
		case <-stop:
			c.setFinalFromLast()
			return
		default:
		}
		start := time.Now()
		exitCode, reason, message := c.runOnce(stop)
		ranFor := time.Since(start)

		p := c.pod
		p.mu.Lock()
		c.lastTerm = &corev1.ContainerStateTerminated{
			ExitCode: int32(exitCode), Reason: reason, Message: message,
			StartedAt: metav1.NewTime(start), FinishedAt: metav1.Now(),
			ContainerID: c.lastTermID(),
		}
		stopping := p.terminating
		p.mu.Unlock()
		if stopping {
			c.setFinalFromLast()
			return
		}
		switch p.restartPolicy() {
		case corev1.RestartPolicyNever:
			c.setFinalFromLast()
			return
		case corev1.RestartPolicyOnFailure:
			if exitCode == 0 {
				c.setFinalFromLast()
				return
			}
		}
		if ranFor > backoffReset {
			backoff = backoffInitial
		}
		p.mu.Lock()
		c.waiting = &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container %s of pod %s", backoff, c.spec.Name, p.key),
		}
		p.mu.Unlock()
		p.notify()
		p.log.Info("container exited; restarting after back-off", "container", c.spec.Name, "exitCode", exitCode, "reason", reason, "backoff", backoff)
		select {
		case <-stop:
			c.setFinalFromLast()
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, backoffMax)
		p.mu.Lock()
		c.restartCount++
		p.mu.Unlock()
	}
}

func (c *container) lastTermID() string {
	if c.cmd != nil && c.cmd.Process != nil {
		return "pacer-dev://" + strconv.Itoa(c.cmd.Process.Pid)
	}
	return ""
}

func (c *container) setFinalFromLast() {
	p := c.pod
	p.mu.Lock()
	defer p.mu.Unlock()
	c.ready = false
	c.waiting = nil
	if c.lastTerm != nil {
		c.final = c.lastTerm
	} else {
		c.final = &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed", FinishedAt: metav1.Now()}
	}
}

// runOnce starts the process once, probes it, and waits for it to exit.
func (c *container) runOnce(stop <-chan struct{}) (exitCode int, reason, message string) {
	p := c.pod
	cmd := exec.Command(c.binary, append(append([]string{}, c.spec.Command[min(1, len(c.spec.Command)):]...), c.spec.Args...)...)
	cmd.Dir = p.dir
	cmd.Env = c.environ()
	logPath := filepath.Join(p.dir, c.spec.Name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 128, "StartError", err.Error()
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	var oomBefore int64
	if c.group != nil {
		c.group.Wrap(cmd)
		oomBefore = c.group.OOMKills()
	}

	p.mu.Lock()
	if p.terminating {
		p.mu.Unlock()
		return 0, "Completed", "pod terminated before the container started"
	}
	if err := proc.Start(cmd); err != nil {
		c.waiting = &corev1.ContainerStateWaiting{Reason: "RunContainerError", Message: err.Error()}
		p.mu.Unlock()
		p.notify()
		return 128, "StartError", err.Error()
	}
	exited := make(chan struct{})
	c.cmd, c.exited, c.running, c.startedAt = cmd, exited, true, time.Now()
	c.waiting, c.ready, c.killReason = nil, false, ""
	c.readyOK, c.readyFail, c.liveFail = 0, 0, 0
	p.mu.Unlock()
	p.log.Info("container started", "container", c.spec.Name, "pid", cmd.Process.Pid, "ip", p.ip)
	p.notify()

	probeCtx, cancelProbes := context.WithCancel(context.Background())
	go c.probeLoop(probeCtx, c.spec.ReadinessProbe, c.onReadiness)
	go c.probeLoop(probeCtx, c.spec.LivenessProbe, c.onLiveness)

	waitErr := cmd.Wait()
	close(exited)
	cancelProbes()
	// Anything the process left in its group goes with it.
	_ = proc.SignalGroup(cmd.Process.Pid, syscall.SIGKILL)

	p.mu.Lock()
	c.running, c.ready = false, false
	killReason := c.killReason
	p.mu.Unlock()

	exitCode = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		exitCode = 128 + int(ws.Signal())
	}
	switch {
	case c.group != nil && c.group.OOMKills() > oomBefore:
		// As the kubelet reports it: the kernel killed the process at its memory limit.
		reason, message = "OOMKilled", fmt.Sprintf("the container exceeded its memory limit (%s)", c.spec.Resources.Limits.Memory())
	case killReason != "":
		reason, message = "Error", killReason
	case exitCode == 0:
		reason = "Completed"
	default:
		reason = "Error"
		if waitErr != nil {
			message = waitErr.Error() + tail(logPath)
		}
	}
	return exitCode, reason, message
}

// environ is the process environment: the container's resolved variables,
// the listen-host override set to the pod's address, and a minimal base.
func (c *container) environ() []string {
	p := c.pod
	env := []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + p.dir,
		"HOSTNAME=" + p.name,
	}
	for _, e := range c.spec.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	if p.agent.opts.ListenHostEnv != "" {
		env = append(env, p.agent.opts.ListenHostEnv+"="+p.ip)
	}
	return env
}

// kill stops the current process: SIGTERM to its group, SIGKILL after grace.
func (c *container) kill(reason string, grace time.Duration) {
	p := c.pod
	p.mu.Lock()
	cmd, exited, running := c.cmd, c.exited, c.running
	if running && c.killReason == "" {
		c.killReason = reason
	}
	p.mu.Unlock()
	if !running || cmd == nil {
		return
	}
	proc.Stop(cmd, exited, grace)
}

// probeLoop runs one probe against the current process until ctx ends.
func (c *container) probeLoop(ctx context.Context, probe *corev1.Probe, record func(ok bool, msg string)) {
	if probe == nil {
		if record != nil && probe == c.spec.ReadinessProbe {
			record(true, "") // no readiness probe: ready once running
		}
		return
	}
	period := time.Duration(max(probe.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(probe.TimeoutSeconds, 1)) * time.Second
	select {
	case <-ctx.Done():
		return
	case <-time.After(time.Duration(probe.InitialDelaySeconds) * time.Second):
	}
	// The first readiness probe runs soon after the start, so a pod becomes
	// ready in about a second rather than a whole period.
	first := time.NewTimer(0)
	if probe == c.spec.ReadinessProbe {
		first.Reset(500 * time.Millisecond)
	}
	<-first.C
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		ok, msg := c.probeOnce(ctx, probe, timeout)
		if ctx.Err() != nil {
			return
		}
		record(ok, msg)
		// Until ready, probe readiness every second (a kubelet probes at its
		// period; this only shortens start-up on a dev machine).
		wait := ticker.C
		if probe == c.spec.ReadinessProbe {
			c.pod.mu.Lock()
			ready := c.ready
			c.pod.mu.Unlock()
			if !ready {
				select {
				case <-ctx.Done():
					return
				case <-time.After(time.Second):
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		}
	}
}

func (c *container) probeOnce(ctx context.Context, probe *corev1.Probe, timeout time.Duration) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case probe.HTTPGet != nil:
		g := probe.HTTPGet
		port, err := c.resolvePort(g.Port)
		if err != nil {
			return false, err.Error()
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(c.pod.ip, strconv.Itoa(port)), g.Path)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		for _, h := range g.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		res, err := c.pod.agent.probeClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		if res.StatusCode >= 200 && res.StatusCode < 400 {
			return true, ""
		}
		return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode)
	case probe.TCPSocket != nil:
		port, err := c.resolvePort(probe.TCPSocket.Port)
		if err != nil {
			return false, err.Error()
		}
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(c.pod.ip, strconv.Itoa(port)))
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	default:
		return true, "" // exec and gRPC probes are not run by the dev node agent
	}
}

func (c *container) resolvePort(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range c.spec.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q not found in container %s", p.StrVal, c.spec.Name)
}

func (c *container) onReadiness(ok bool, msg string) {
	p := c.pod
	probe := c.spec.ReadinessProbe
	p.mu.Lock()
	before := c.ready
	if ok {
		c.readyOK++
		c.readyFail = 0
		if probe == nil || c.readyOK >= max(probe.SuccessThreshold, 1) {
			c.ready = c.running
		}
	} else {
		c.readyFail++
		c.readyOK = 0
		if c.readyFail >= max(probe.FailureThreshold, 1) {
			c.ready = false
		}
	}
	changed := before != c.ready
	p.mu.Unlock()
	if changed {
		p.log.Info("readiness changed", "container", c.spec.Name, "ready", !before, "probe", msg)
		p.notify()
	}
}

func (c *container) onLiveness(ok bool, msg string) {
	p := c.pod
	probe := c.spec.LivenessProbe
	p.mu.Lock()
	if ok {
		c.liveFail = 0
		p.mu.Unlock()
		return
	}
	c.liveFail++
	failed := c.liveFail >= max(probe.FailureThreshold, 1)
	p.mu.Unlock()
	if failed {
		p.log.Info("liveness probe failed; restarting container", "container", c.spec.Name, "probe", msg)
		p.agent.recorder.Eventf(p.apiPod(), corev1.EventTypeWarning, "Unhealthy", "Liveness probe failed: %s; the container will be restarted", msg)
		go c.kill("Liveness probe failed: "+msg, p.graceFromSpec())
	}
}

// tail returns the last lines of a log file, for a crash message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	return "; log tail: " + strings.TrimSpace(string(b))
}
