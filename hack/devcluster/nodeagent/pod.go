package nodeagent

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// podRuntime is one pod running on the node: a folder, a loopback address
// and a process per container.
type podRuntime struct {
	agent *Agent
	key   string // namespace/name
	name  string
	log   *slog.Logger
	dir   string
	ip    string
	start metav1.Time

	mu          sync.Mutex
	pod         *corev1.Pod // the latest pod from the API, env resolved
	containers  []*container
	failReason  string // set when the pod cannot run at all
	failMessage string
	terminating bool
	stop        chan struct{} // closed when termination begins
	lastSent    *corev1.PodStatus
	gone        bool // terminated and forgotten
}

func (p *podRuntime) restartPolicy() corev1.RestartPolicy {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod.Spec.RestartPolicy
}

// apiPod is a copy of the pod for events.
func (p *podRuntime) apiPod() *corev1.Pod {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pod.DeepCopy()
}

func (p *podRuntime) graceFromSpec() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if g := p.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// podFolder maps mount paths to the pod's folder: a path under a volume
// mount's mountPath in a container's command, args or env values is
// rewritten to the same path under <pod folder>/volumes/<volume name>.
func (p *podRuntime) mapPath(c *corev1.Container, s string) string {
	for _, m := range c.VolumeMounts {
		mp := strings.TrimSuffix(m.MountPath, "/")
		host := filepath.Join(p.dir, "volumes", m.Name)
		if m.SubPath != "" {
			host = filepath.Join(host, m.SubPath)
		}
		if s == mp {
			return host
		}
		if strings.Contains(s, mp+"/") {
			s = strings.ReplaceAll(s, mp+"/", host+"/")
		}
		if strings.HasSuffix(s, "="+mp) {
			s = strings.TrimSuffix(s, mp) + host
		}
	}
	return s
}

// begin terminating the pod: preStop hooks, SIGTERM, the grace period,
// SIGKILL, as the kubelet does. grace counts from now and includes preStop.
func (p *podRuntime) terminate(grace time.Duration) {
	p.mu.Lock()
	if p.terminating {
		p.mu.Unlock()
		return
	}
	p.terminating = true
	close(p.stop)
	containers := p.containers
	p.mu.Unlock()
	p.notify()

	deadline := time.Now().Add(grace)
	var wg sync.WaitGroup
	for _, c := range containers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.mu.Lock()
			running := c.running
			p.mu.Unlock()
			if running {
				c.preStop(deadline)
				// The kubelet gives at least 2s after preStop.
				c.kill("", max(time.Until(deadline), 2*time.Second))
			}
			<-c.loopDone
		}()
	}
	wg.Wait()
	p.notify()
	p.log.Info("pod terminated")
}

// preStop runs the container's preStop hook (sleep or HTTP GET), bounded by the deadline.
func (c *container) preStop(deadline time.Time) {
	lc := c.spec.Lifecycle
	if lc == nil || lc.PreStop == nil {
		return
	}
	h := lc.PreStop
	switch {
	case h.Sleep != nil:
		d := min(time.Duration(h.Sleep.Seconds)*time.Second, time.Until(deadline))
		c.pod.log.Info("preStop sleep", "container", c.spec.Name, "duration", d)
		time.Sleep(max(d, 0))
	case h.HTTPGet != nil:
		probe := &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: h.HTTPGet}}
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		defer cancel()
		_, _ = c.probeOnce(ctx, probe, max(time.Until(deadline), time.Second))
	}
}

// status is the pod status the agent reports.
func (p *podRuntime) status() *corev1.PodStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.pod.Status.DeepCopy()
	st.HostIP = p.agent.opts.HostIP
	st.HostIPs = []corev1.HostIP{{IP: p.agent.opts.HostIP}}
	st.StartTime = &p.start
	if p.ip != "" {
		st.PodIP = p.ip
		st.PodIPs = []corev1.PodIP{{IP: p.ip}}
	}
	st.Reason, st.Message = "", ""

	st.ContainerStatuses = nil
	allReady, anyRunning, allFinal, allSucceeded := true, false, true, true
	for _, c := range p.containers {
		cs := corev1.ContainerStatus{
			Name:         c.spec.Name,
			Image:        c.spec.Image,
			ImageID:      "file://" + c.binary,
			RestartCount: c.restartCount,
			Ready:        c.ready && c.running,
		}
		started := c.running
		cs.Started = &started
		if c.lastTerm != nil && (c.running || c.waiting != nil) {
			cs.LastTerminationState = corev1.ContainerState{Terminated: c.lastTerm}
		}
		switch {
		case c.running:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.startedAt)}
			cs.ContainerID = c.lastTermID()
			anyRunning = true
		case c.final != nil:
			cs.State.Terminated = c.final
			if c.final.ExitCode != 0 {
				allSucceeded = false
			}
		case c.waiting != nil:
			cs.State.Waiting = c.waiting
		default:
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
		}
		if c.final == nil {
			allFinal = false
		}
		if !cs.Ready {
			allReady = false
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}

	switch {
	case p.failReason != "":
		st.Phase = corev1.PodFailed
		st.Reason, st.Message = p.failReason, p.failMessage
		allReady = false
	case allFinal && len(p.containers) > 0:
		st.Phase = corev1.PodFailed
		if allSucceeded {
			st.Phase = corev1.PodSucceeded
		}
	case anyRunning:
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}

	setCondition(st, corev1.PodReadyToStartContainers, p.failReason == "" && !allFinal, "")
	setCondition(st, corev1.PodInitialized, true, "")
	notReady := ""
	if !allReady {
		notReady = "ContainersNotReady"
	}
	setCondition(st, corev1.ContainersReady, allReady, notReady)
	setCondition(st, corev1.PodReady, allReady, notReady)
	return st
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, ok bool, reason string) {
	status := corev1.ConditionFalse
	if ok {
		status = corev1.ConditionTrue
		reason = ""
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status {
			c.Status, c.LastTransitionTime = status, metav1.Now()
		}
		c.Reason = reason
		return
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: t, Status: status, Reason: reason, LastTransitionTime: metav1.Now()})
}

// notify sends the pod's status to the pod controller when it changed.
func (p *podRuntime) notify() {
	st := p.status()
	p.mu.Lock()
	if p.lastSent != nil && equality.Semantic.DeepEqual(p.lastSent, st) {
		p.mu.Unlock()
		return
	}
	p.lastSent = st.DeepCopy()
	// Keep the transition times we sent, so an unchanged condition keeps its time.
	p.pod.Status = *st.DeepCopy()
	pod := p.pod.DeepCopy()
	p.mu.Unlock()
	pod.Status = *st
	p.agent.sendStatus(pod)
}

// writeVolumes writes the pod's ConfigMap and Secret volumes and creates
// its emptyDirs. A missing ConfigMap or Secret is an error unless optional.
func (p *podRuntime) writeVolumes(only func(corev1.Volume) bool) error {
	p.mu.Lock()
	vols := p.pod.Spec.Volumes
	ns := p.pod.Namespace
	p.mu.Unlock()
	for _, v := range vols {
		if only != nil && !only(v) {
			continue
		}
		dir := filepath.Join(p.dir, "volumes", v.Name)
		switch {
		case v.ConfigMap != nil:
			cm, err := p.agent.configMaps.ConfigMaps(ns).Get(v.ConfigMap.Name)
			if err != nil {
				if v.ConfigMap.Optional != nil && *v.ConfigMap.Optional {
					continue
				}
				return fmt.Errorf("configmap %s of volume %s: %w", v.ConfigMap.Name, v.Name, err)
			}
			files := map[string][]byte{}
			for k, s := range cm.Data {
				files[k] = []byte(s)
			}
			for k, b := range cm.BinaryData {
				files[k] = b
			}
			files = project(files, v.ConfigMap.Items)
			changed, err := writeAtomic(dir, files, fileMode(v.ConfigMap.DefaultMode))
			if err != nil {
				return err
			}
			if changed {
				p.log.Info("configmap volume written", "volume", v.Name, "configmap", cm.Name, "resourceVersion", cm.ResourceVersion)
			}
		case v.Secret != nil:
			s, err := p.agent.secrets.Secrets(ns).Get(v.Secret.SecretName)
			if err != nil {
				if v.Secret.Optional != nil && *v.Secret.Optional {
					continue
				}
				return fmt.Errorf("secret %s of volume %s: %w", v.Secret.SecretName, v.Name, err)
			}
			files := project(s.Data, v.Secret.Items)
			if _, err := writeAtomic(dir, files, fileMode(v.Secret.DefaultMode)); err != nil {
				return err
			}
		case v.EmptyDir != nil:
			if err := os.MkdirAll(dir, 0o777); err != nil {
				return err
			}
		}
	}
	return nil
}

func project(files map[string][]byte, items []corev1.KeyToPath) map[string][]byte {
	if len(items) == 0 {
		return files
	}
	out := map[string][]byte{}
	for _, it := range items {
		if b, ok := files[it.Key]; ok {
			out[it.Path] = b
		}
	}
	return out
}

func fileMode(m *int32) os.FileMode {
	if m == nil {
		return 0o644
	}
	return os.FileMode(*m)
}

// usesVolume reports whether the pod mounts the ConfigMap or Secret.
func (p *podRuntime) usesVolume(kind, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.pod.Spec.Volumes {
		if kind == "ConfigMap" && v.ConfigMap != nil && v.ConfigMap.Name == name {
			return true
		}
		if kind == "Secret" && v.Secret != nil && v.Secret.SecretName == name {
			return true
		}
	}
	return false
}
