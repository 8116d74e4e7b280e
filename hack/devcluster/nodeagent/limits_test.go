package nodeagent

import (
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
)

// childEnv makes the test binary a container process: "hog" allocates
// memory until the kernel kills it (at most 1 GiB).
const childEnv = "PACER_NODEAGENT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "hog" {
		var keep [][]byte
		for range 64 {
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

func TestLimitsOf(t *testing.T) {
	got := limitsOf(corev1.ResourceRequirements{
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("50m")},
	})
	want := cgroups.Limits{CPULimitMilli: 200, CPURequestMilli: 50, MemoryLimit: 64 << 20}
	if got != want {
		t.Errorf("limitsOf = %+v, want %+v", got, want)
	}
	if got := limitsOf(corev1.ResourceRequirements{}); got != (cgroups.Limits{}) {
		t.Errorf("limitsOf(none) = %+v, want no limits", got)
	}
}

func TestPodLimitsOf(t *testing.T) {
	res := func(cpuReq, cpuLim, mem string) corev1.ResourceRequirements {
		r := corev1.ResourceRequirements{Limits: corev1.ResourceList{}, Requests: corev1.ResourceList{}}
		if cpuReq != "" {
			r.Requests[corev1.ResourceCPU] = resource.MustParse(cpuReq)
		}
		if cpuLim != "" {
			r.Limits[corev1.ResourceCPU] = resource.MustParse(cpuLim)
		}
		if mem != "" {
			r.Limits[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		return r
	}
	both := []corev1.Container{{Resources: res("100m", "200m", "64Mi")}, {Resources: res("50m", "100m", "32Mi")}}
	if got, want := podLimitsOf(both), (cgroups.Limits{CPURequestMilli: 150, CPULimitMilli: 300, MemoryLimit: 96 << 20}); got != want {
		t.Errorf("both limited: %+v, want %+v", got, want)
	}
	// One container without limits: the pod has none (requests still add up).
	one := []corev1.Container{{Resources: res("100m", "200m", "64Mi")}, {Resources: res("50m", "", "")}}
	if got, want := podLimitsOf(one), (cgroups.Limits{CPURequestMilli: 150}); got != want {
		t.Errorf("one unlimited: %+v, want %+v", got, want)
	}
}

// A container over its memory limit is killed by the kernel, reported as
// OOMKilled with exit code 137, and restarted under the pod's policy.
func TestOOMKilledIsReportedAndRestarted(t *testing.T) {
	cg, err := cgroups.Detect(fmt.Sprintf("pacer-devcluster-test-%d", os.Getpid()))
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cgroups: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	defer cg.Remove()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	a := &Agent{
		opts:     Options{Cgroups: cg, HostIP: "127.0.0.1", Log: slog.New(slog.DiscardHandler)},
		recorder: record.NewFakeRecorder(10),
		running:  map[string]*podRuntime{},
		ips:      map[string]bool{},
	}
	spec := corev1.Container{
		Name: "hog", Image: "hog",
		Env:       []corev1.EnvVar{{Name: childEnv, Value: "hog"}},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")}},
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "hog", UID: types.UID(fmt.Sprintf("oom-%d", os.Getpid()))},
		Spec:       corev1.PodSpec{RestartPolicy: corev1.RestartPolicyOnFailure, Containers: []corev1.Container{spec}},
	}
	p := &podRuntime{agent: a, key: "default/hog", name: "hog", log: a.opts.Log, dir: t.TempDir(), ip: "127.0.0.1", pod: pod, stop: make(chan struct{})}
	group, err := cg.Container(string(pod.UID), spec.Name, limitsOf(spec.Resources))
	if err != nil {
		t.Fatal(err)
	}
	c := &container{pod: p, spec: spec, binary: self, group: group, loopDone: make(chan struct{})}
	p.containers = []*container{c}
	go c.run(p.stop)
	defer func() {
		close(p.stop)
		c.kill("", time.Second)
		<-c.loopDone
		a.removeCgroup(p)
	}()

	deadline := time.Now().Add(60 * time.Second)
	for {
		cs := p.status().ContainerStatuses[0]
		if last := cs.LastTerminationState.Terminated; last != nil && cs.State.Waiting != nil {
			if last.Reason != "OOMKilled" || last.ExitCode != 137 {
				t.Fatalf("last state: reason %q, exit code %d; want OOMKilled, 137", last.Reason, last.ExitCode)
			}
			if cs.State.Waiting.Reason != "CrashLoopBackOff" {
				t.Fatalf("state: waiting %q; want CrashLoopBackOff (restart under OnFailure)", cs.State.Waiting.Reason)
			}
			t.Logf("last state: %s (%d): %s; now waiting: %s", last.Reason, last.ExitCode, last.Message, cs.State.Waiting.Message)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OOM kill reported within 60s: %+v", cs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The restart comes after the 2s back-off, in the same cgroup.
	for deadline := time.Now().Add(30 * time.Second); ; {
		p.mu.Lock()
		n := c.restartCount
		p.mu.Unlock()
		if n >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the container was not restarted within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
