// Package nodeagent is the dev cluster's one stand-in for a kubelet and
// its container runtime. It registers a Node and keeps its Lease, and runs
// each Pod bound to that Node as local processes, one per container, on the
// pod's own loopback address.
//
// The node and pod bookkeeping with the API server (registration, lease,
// node status, the pod informer and work queues, env resolution from
// Secrets and ConfigMaps, status updates, force deletion after the grace
// period) is virtual-kubelet's node package. This package is its provider:
// it maps images to local binaries, writes volumes, starts, probes,
// restarts and stops processes, and reports their status.
package nodeagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
	"github.com/virtual-kubelet/virtual-kubelet/errdefs"
	vklog "github.com/virtual-kubelet/virtual-kubelet/log"
	vkslog "github.com/virtual-kubelet/virtual-kubelet/log/slog"
	"github.com/virtual-kubelet/virtual-kubelet/node"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
)

// Options configure the node agent.
type Options struct {
	// NodeName is the Node's name.
	NodeName string
	// Dir holds one folder per pod.
	Dir string
	// Images maps an image to a local binary. A key matches the whole
	// image reference, or its name without registry, path, tag and digest
	// (so "pacer-api" matches ghcr.io/pacer-dev/pacer-api:v0.1.0).
	Images map[string]string
	// ListenHostEnv is set in every process to the pod's IP, so a program
	// that honours it binds that address alone (pacer-api: PACER_LISTEN_HOST).
	ListenHostEnv string
	// HostIP is the Node's address (127.0.0.1).
	HostIP string
	// CPU and Memory are the Node's capacity.
	CPU, Memory resource.Quantity
	// Log receives the agent's log.
	Log *slog.Logger
	// Cgroups, when set, puts each container in its own cgroup with its
	// limits, as a kubelet does; nil runs pods without limits.
	Cgroups *cgroups.Manager
	// KubeletAPI, when set, serves the kubelet's /metrics/resource over
	// HTTPS on HostIP, for metrics-server.
	KubeletAPI *KubeletAPI
}

// Agent runs pods.
type Agent struct {
	opts        Options
	client      kubernetes.Interface
	recorder    record.EventRecorder
	probeClient *http.Client
	configMaps  corelisters.ConfigMapLister
	secrets     corelisters.SecretLister
	pods        corelisters.PodLister

	mu       sync.Mutex
	running  map[string]*podRuntime
	ips      map[string]bool
	notifyFn func(*corev1.Pod)
	ipBase   int
	ipNext   int
	warned   map[string]bool // warnings printed already

	kubeletPort int32 // the kubelet API's port; 0: not served
}

// DefaultOptions are the options with this machine's capacity.
func DefaultOptions() Options {
	return Options{
		NodeName:      "pacer-dev-node",
		ListenHostEnv: "PACER_LISTEN_HOST",
		HostIP:        "127.0.0.1",
		CPU:           *resource.NewQuantity(int64(runtime.NumCPU()), resource.DecimalSI),
		Memory:        memTotal(),
	}
}

// Run registers the node and runs pods until ctx ends, then stops every
// pod process (SIGTERM, then SIGKILL after a few seconds) and returns.
// ready is closed once the node is registered and the pod controller runs.
func Run(ctx context.Context, cfg *rest.Config, o Options, ready chan<- struct{}) error {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	// virtual-kubelet logs through its own interface; route it to ours, quietly.
	vklog.L = vkslog.FromSlog(slog.New(levelFilter{o.Log.Handler(), slog.LevelWarn}))

	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return err
	}
	a := &Agent{
		opts:        o,
		client:      client,
		probeClient: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}},
		running:     map[string]*podRuntime{},
		ips:         map[string]bool{},
		// A random third octet makes two dev clusters on one machine unlikely to collide.
		ipBase: 10 + rand.IntN(230),
	}

	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	a.recorder = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "pacer-node-agent", Host: o.NodeName})

	podFactory := informers.NewSharedInformerFactoryWithOptions(client, time.Minute,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", o.NodeName).String()
		}))
	factory := informers.NewSharedInformerFactory(client, time.Minute)
	podInformer := podFactory.Core().V1().Pods()
	cmInformer := factory.Core().V1().ConfigMaps()
	secretInformer := factory.Core().V1().Secrets()
	a.pods = podInformer.Lister()
	a.configMaps = cmInformer.Lister()
	a.secrets = secretInformer.Lister()
	// ConfigMap and Secret volumes follow their source, as the kubelet's do.
	for kind, inf := range map[string]cache.SharedIndexInformer{"ConfigMap": cmInformer.Informer(), "Secret": secretInformer.Informer()} {
		if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			UpdateFunc: func(_, obj any) { a.refreshVolumes(kind, obj.(metav1.Object)) },
			AddFunc:    func(obj any) { a.refreshVolumes(kind, obj.(metav1.Object)) },
		}); err != nil {
			return err
		}
	}

	var kubeletListener net.Listener
	if o.KubeletAPI != nil {
		if kubeletListener, a.kubeletPort, err = listenKubeletAPI(o.HostIP); err != nil {
			return err
		}
		defer kubeletListener.Close()
	}

	pc, err := node.NewPodController(node.PodControllerConfig{
		PodClient:         client.CoreV1(),
		PodInformer:       podInformer,
		EventRecorder:     a.recorder,
		Provider:          a,
		ConfigMapInformer: cmInformer,
		SecretInformer:    secretInformer,
		ServiceInformer:   factory.Core().V1().Services(),
	})
	if err != nil {
		return err
	}
	nc, err := node.NewNodeController(node.NaiveNodeProvider{}, a.nodeObject(), client.CoreV1().Nodes(),
		node.WithNodeEnableLeaseV1(client.CoordinationV1().Leases(corev1.NamespaceNodeLease), 40),
		node.WithNodeStatusUpdateInterval(30*time.Second))
	if err != nil {
		return err
	}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	podFactory.Start(runCtx.Done())
	factory.Start(runCtx.Done())

	errs := make(chan error, 3)
	if kubeletListener != nil {
		go func() {
			if err := a.serveKubeletAPI(runCtx, kubeletListener, o.KubeletAPI); err != nil {
				errs <- fmt.Errorf("kubelet API: %w", err)
			}
		}()
	}
	go func() { errs <- nc.Run(runCtx) }()
	select {
	case <-nc.Ready():
	case err := <-errs:
		return fmt.Errorf("node controller: %w", err)
	case <-ctx.Done():
		return ctx.Err()
	}
	o.Log.Info("node registered", "node", o.NodeName)
	go func() { errs <- pc.Run(runCtx, 4) }()
	select {
	case <-pc.Ready():
	case err := <-errs:
		return fmt.Errorf("pod controller: %w", err)
	case <-ctx.Done():
	}
	if ready != nil {
		close(ready)
	}

	select {
	case <-ctx.Done():
	case err := <-errs:
		o.Log.Error("node agent stopped", "err", err)
	}
	a.shutdown(5 * time.Second)
	cancel()
	return nil
}

func (a *Agent) nodeObject() *corev1.Node {
	o := a.opts
	list := corev1.ResourceList{
		corev1.ResourceCPU:    o.CPU,
		corev1.ResourceMemory: o.Memory,
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	now := metav1.Now()
	cond := func(t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: o.NodeName,
			Labels: map[string]string{
				"kubernetes.io/hostname": o.NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     runtime.GOARCH,
				"node.pacer.dev/agent":   "devcluster",
			},
		},
		Status: corev1.NodeStatus{
			Capacity:    list,
			Allocatable: list,
			Phase:       corev1.NodeRunning,
			Conditions: []corev1.NodeCondition{
				cond(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "the pacer dev node agent is running"),
				cond(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", ""),
				cond(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", ""),
				cond(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", ""),
				cond(corev1.NodeNetworkUnavailable, corev1.ConditionFalse, "RouteCreated", "loopback"),
			},
			Addresses: []corev1.NodeAddress{
				{Type: corev1.NodeInternalIP, Address: o.HostIP},
				{Type: corev1.NodeHostName, Address: o.NodeName},
			},
			NodeInfo: corev1.NodeSystemInfo{
				OperatingSystem:         "linux",
				Architecture:            runtime.GOARCH,
				KubeletVersion:          "v1.37.2-pacer-dev",
				ContainerRuntimeVersion: "pacer-dev://local-processes",
			},
		},
	}
	if a.kubeletPort != 0 {
		n.Status.DaemonEndpoints.KubeletEndpoint.Port = a.kubeletPort
	}
	return n
}

// CreatePod starts a pod (virtual-kubelet's PodLifecycleHandler).
func (a *Agent) CreatePod(ctx context.Context, pod *corev1.Pod) error {
	key := pod.Namespace + "/" + pod.Name
	a.mu.Lock()
	if _, ok := a.running[key]; ok {
		a.mu.Unlock()
		return nil
	}
	p := &podRuntime{
		agent: a,
		key:   key,
		name:  pod.Name,
		log:   a.opts.Log.With("pod", key),
		dir:   filepath.Join(a.opts.Dir, fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, string(pod.UID)[:8])),
		start: metav1.Now(),
		pod:   pod.DeepCopy(),
		stop:  make(chan struct{}),
	}
	a.running[key] = p
	a.mu.Unlock()

	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	if err := a.resolveResourceEnv(p.pod); err != nil {
		p.fail("CreateContainerConfigError", err.Error())
		return nil
	}
	var containers []*container
	for _, c := range p.pod.Spec.Containers {
		bin, ok := a.binaryFor(c.Image)
		if !ok {
			p.fail("UnknownImage", fmt.Sprintf("image %q of container %s is not mapped to a local binary (node agent flag --image NAME=PATH; mapped: %s)",
				c.Image, c.Name, strings.Join(slices.Sorted(maps.Keys(a.opts.Images)), ", ")))
			a.recorder.Eventf(pod, corev1.EventTypeWarning, "UnknownImage", "image %q is not mapped to a local binary", c.Image)
			return nil
		}
		c := *c.DeepCopy()
		c.Command = mapAll(p, &c, c.Command)
		c.Args = mapAll(p, &c, c.Args)
		for i := range c.Env {
			c.Env[i].Value = p.mapPath(&c, c.Env[i].Value)
		}
		containers = append(containers, &container{pod: p, spec: c, binary: bin, loopDone: make(chan struct{})})
	}
	ip, err := a.allocateIP(p.pod)
	if err != nil {
		p.fail("NoAddress", err.Error())
		a.recorder.Event(pod, corev1.EventTypeWarning, "NoAddress", err.Error())
		a.warnOnce(p.log, "pod cannot get an address", err.Error())
		return nil
	}
	p.mu.Lock()
	p.ip = ip
	p.mu.Unlock()
	if cg := a.opts.Cgroups; cg != nil {
		for _, c := range containers {
			if c.group, err = cg.Container(string(pod.UID), c.spec.Name, limitsOf(c.spec.Resources)); err != nil {
				p.fail("RunContainerError", fmt.Sprintf("cgroup of container %s: %v", c.spec.Name, err))
				a.recorder.Eventf(pod, corev1.EventTypeWarning, "RunContainerError", "cgroup of container %s: %v", c.spec.Name, err)
				return nil
			}
		}
		if err := cg.Pod(string(pod.UID)).Apply(podLimitsOf(p.pod.Spec.Containers)); err != nil {
			p.fail("RunContainerError", fmt.Sprintf("cgroup of the pod: %v", err))
			return nil
		}
	}
	p.mu.Lock()
	p.containers = containers
	p.mu.Unlock()
	if err := p.writeVolumes(nil); err != nil {
		// The kubelet retries; so does the pod controller when this returns an error.
		p.log.Info("volumes not ready", "err", err)
		a.forget(p)
		return err
	}
	p.log.Info("starting pod", "ip", ip, "dir", p.dir)
	for _, c := range containers {
		go c.run(p.stop)
	}
	p.notify()
	return nil
}

func mapAll(p *podRuntime, c *corev1.Container, in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = p.mapPath(c, s)
	}
	return out
}

// fail marks a pod that cannot run.
func (p *podRuntime) fail(reason, message string) {
	p.mu.Lock()
	p.failReason, p.failMessage = reason, message
	p.mu.Unlock()
	p.log.Info("pod cannot run", "reason", reason, "message", message)
	p.notify()
}

// UpdatePod takes a new version of a running pod: only labels, annotations
// and the like can change on a pod, and none of them affects the processes.
func (a *Agent) UpdatePod(ctx context.Context, pod *corev1.Pod) error {
	a.mu.Lock()
	p, ok := a.running[pod.Namespace+"/"+pod.Name]
	a.mu.Unlock()
	if !ok {
		return errdefs.NotFound("pod not found")
	}
	p.mu.Lock()
	p.pod.Labels, p.pod.Annotations = pod.Labels, pod.Annotations
	p.mu.Unlock()
	return nil
}

// DeletePod begins a graceful termination and returns at once; the final
// status follows through NotifyPods.
func (a *Agent) DeletePod(ctx context.Context, pod *corev1.Pod) error {
	key := pod.Namespace + "/" + pod.Name
	a.mu.Lock()
	p, ok := a.running[key]
	a.mu.Unlock()
	if !ok || p.pod.UID != pod.UID {
		return errdefs.NotFound("pod not found")
	}
	grace := 30 * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	p.log.Info("terminating pod", "grace", grace)
	go func() {
		p.terminate(grace)
		// Let the final status reach the API server, then remove the pod
		// at once, as the kubelet does once its containers are gone.
		time.Sleep(500 * time.Millisecond)
		opts := metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), Preconditions: metav1.NewUIDPreconditions(string(pod.UID))}
		if err := a.client.CoreV1().Pods(pod.Namespace).Delete(context.Background(), pod.Name, opts); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			p.log.Info("remove terminated pod", "err", err)
		}
		a.forget(p)
	}()
	return nil
}

// forget releases a pod's address and folder.
func (a *Agent) forget(p *podRuntime) {
	a.mu.Lock()
	if a.running[p.key] == p {
		delete(a.running, p.key)
	}
	delete(a.ips, p.ip)
	a.mu.Unlock()
	p.mu.Lock()
	p.gone = true
	p.mu.Unlock()
	a.removeCgroup(p)
	_ = os.RemoveAll(p.dir)
}

// limitsOf is what the kubelet puts in a container's cgroup.
func limitsOf(r corev1.ResourceRequirements) cgroups.Limits {
	return cgroups.Limits{
		CPULimitMilli:   r.Limits.Cpu().MilliValue(),
		CPURequestMilli: r.Requests.Cpu().MilliValue(),
		MemoryLimit:     r.Limits.Memory().Value(),
	}
}

// podLimitsOf is what the kubelet puts in a pod's cgroup: the sum of the
// containers' CPU requests (shares), and the sums of their CPU and memory
// limits when every container has one.
func podLimitsOf(cs []corev1.Container) cgroups.Limits {
	var pod cgroups.Limits
	allCPU, allMem := true, true
	for _, c := range cs {
		l := limitsOf(c.Resources)
		pod.CPURequestMilli += l.CPURequestMilli
		pod.CPULimitMilli += l.CPULimitMilli
		pod.MemoryLimit += l.MemoryLimit
		allCPU = allCPU && l.CPULimitMilli > 0
		allMem = allMem && l.MemoryLimit > 0
	}
	if !allCPU {
		pod.CPULimitMilli = 0
	}
	if !allMem {
		pod.MemoryLimit = 0
	}
	return pod
}

// removeCgroup removes a pod's cgroups (its processes are gone by now).
func (a *Agent) removeCgroup(p *podRuntime) {
	if a.opts.Cgroups == nil {
		return
	}
	if err := a.opts.Cgroups.Pod(string(p.apiPod().UID)).Remove(); err != nil {
		p.log.Warn("remove the pod's cgroup", "err", err)
	}
}

// PodUsage is a running pod's CPU time and memory working set, from its cgroup.
func (a *Agent) PodUsage(namespace, name string) (cgroups.Usage, error) {
	a.mu.Lock()
	p, ok := a.running[namespace+"/"+name]
	a.mu.Unlock()
	if !ok {
		return cgroups.Usage{}, errdefs.NotFound("pod not found")
	}
	if a.opts.Cgroups == nil {
		return cgroups.Usage{}, errors.New("pod limits are not enforced: no cgroups")
	}
	return a.opts.Cgroups.Pod(string(p.apiPod().UID)).Usage()
}

// GetPod returns a running pod.
func (a *Agent) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	a.mu.Lock()
	p, ok := a.running[namespace+"/"+name]
	a.mu.Unlock()
	if !ok {
		return nil, errdefs.NotFound("pod not found")
	}
	pod := p.apiPod()
	pod.Status = *p.status()
	return pod, nil
}

// GetPodStatus returns a running pod's status.
func (a *Agent) GetPodStatus(ctx context.Context, namespace, name string) (*corev1.PodStatus, error) {
	pod, err := a.GetPod(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return &pod.Status, nil
}

// GetPods lists the running pods.
func (a *Agent) GetPods(ctx context.Context) ([]*corev1.Pod, error) {
	a.mu.Lock()
	ps := slices.Collect(maps.Values(a.running))
	a.mu.Unlock()
	var out []*corev1.Pod
	for _, p := range ps {
		pod := p.apiPod()
		pod.Status = *p.status()
		out = append(out, pod)
	}
	return out, nil
}

// NotifyPods registers the callback status changes go to (PodNotifier).
func (a *Agent) NotifyPods(ctx context.Context, cb func(*corev1.Pod)) {
	a.mu.Lock()
	a.notifyFn = cb
	a.mu.Unlock()
}

func (a *Agent) sendStatus(pod *corev1.Pod) {
	a.mu.Lock()
	cb := a.notifyFn
	a.mu.Unlock()
	if cb != nil {
		cb(pod)
	}
}

// refreshVolumes rewrites the volumes of pods that mount a changed ConfigMap or Secret.
func (a *Agent) refreshVolumes(kind string, obj metav1.Object) {
	a.mu.Lock()
	ps := slices.Collect(maps.Values(a.running))
	a.mu.Unlock()
	for _, p := range ps {
		p.mu.Lock()
		skip := p.terminating || p.gone || p.pod.Namespace != obj.GetNamespace() || p.containers == nil
		p.mu.Unlock()
		if skip || !p.usesVolume(kind, obj.GetName()) {
			continue
		}
		err := p.writeVolumes(func(v corev1.Volume) bool {
			return (kind == "ConfigMap" && v.ConfigMap != nil && v.ConfigMap.Name == obj.GetName()) ||
				(kind == "Secret" && v.Secret != nil && v.Secret.SecretName == obj.GetName())
		})
		if err != nil {
			p.log.Error("update volume", "err", err)
		}
	}
}

// warnOnce logs a warning (shown on the dev cluster's output) the first
// time a message comes, and at info level after that: a pod that cannot run
// is replaced every few seconds, each with the same reason.
func (a *Agent) warnOnce(log *slog.Logger, msg, detail string) {
	a.mu.Lock()
	first := !a.warned[detail]
	if a.warned == nil {
		a.warned = map[string]bool{}
	}
	a.warned[detail] = true
	a.mu.Unlock()
	if first {
		log.Warn(msg, "reason", detail)
	} else {
		log.Info(msg, "reason", detail)
	}
}

// binaryFor maps an image to a local binary.
func (a *Agent) binaryFor(image string) (string, bool) {
	if b, ok := a.opts.Images[image]; ok {
		return b, true
	}
	name := image
	if i := strings.Index(name, "@"); i >= 0 {
		name = name[:i]
	}
	name = name[strings.LastIndex(name, "/")+1:]
	if i := strings.Index(name, ":"); i >= 0 {
		name = name[:i]
	}
	b, ok := a.opts.Images[name]
	return b, ok
}

// resolveResourceEnv fills env vars from resourceFieldRef (virtual-kubelet
// leaves them out), from the pod as the API server has it.
func (a *Agent) resolveResourceEnv(pod *corev1.Pod) error {
	orig, err := a.pods.Pods(pod.Namespace).Get(pod.Name)
	if err != nil {
		return nil //nolint:nilerr // the pod is gone already: nothing to resolve
	}
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		for _, oc := range orig.Spec.Containers {
			if oc.Name != c.Name {
				continue
			}
			for _, e := range oc.Env {
				if e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil {
					continue
				}
				v, err := a.resourceValue(orig, e.ValueFrom.ResourceFieldRef, c.Name)
				if err != nil {
					return fmt.Errorf("env %s: %w", e.Name, err)
				}
				c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: v})
			}
		}
	}
	return nil
}

func (a *Agent) resourceValue(pod *corev1.Pod, ref *corev1.ResourceFieldSelector, defaultContainer string) (string, error) {
	name := ref.ContainerName
	if name == "" {
		name = defaultContainer
	}
	var res corev1.ResourceRequirements
	for _, c := range pod.Spec.Containers {
		if c.Name == name {
			res = c.Resources
		}
	}
	kind, resName, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", fmt.Errorf("unsupported resource %q", ref.Resource)
	}
	list := res.Limits
	if kind == "requests" {
		list = res.Requests
	}
	q, ok := list[corev1.ResourceName(resName)]
	if !ok && kind == "limits" {
		// As the kubelet does: no limit means the node's allocatable.
		switch resName {
		case "cpu":
			q, ok = a.opts.CPU, true
		case "memory":
			q, ok = a.opts.Memory, true
		}
	}
	if !ok {
		return "0", nil
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	if resName == "cpu" {
		// Rounded up to whole divisor units, as the downward API does.
		return strconv.FormatInt((q.MilliValue()+divisor.MilliValue()-1)/divisor.MilliValue(), 10), nil
	}
	return strconv.FormatInt((q.Value()+divisor.Value()-1)/divisor.Value(), 10), nil
}

// allocateIP picks a free loopback address 127.0.x.y for a pod: one no other
// pod of this agent has, on which every container port can be bound. When a
// port is taken on every address (another process listens on *:port), no
// address will do: it says so at once and names the process in the way.
func (a *Agent) allocateIP(pod *corev1.Pod) (string, error) {
	var ports []int32
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			ports = append(ports, p.ContainerPort)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	const span = 240 * 254
	var lastErr error
	for range span {
		n := a.ipNext
		a.ipNext = (a.ipNext + 1) % span
		x := 10 + (a.ipBase-10+n/254)%240
		ip := fmt.Sprintf("127.0.%d.%d", x, 1+n%254)
		if a.ips[ip] {
			continue
		}
		port, err := bindable(ip, ports)
		if err != nil {
			if holders := wildcardListeners(int(port)); len(holders) > 0 {
				return "", fmt.Errorf("port %d is taken on every address by %s, so no pod can bind it on its own address; stop that process (or free the port) and the pod will start", port, strings.Join(holders, ", "))
			}
			lastErr = err
			continue
		}
		a.ips[ip] = true
		return ip, nil
	}
	return "", fmt.Errorf("no free loopback address for the pod (last error: %v)", lastErr)
}

// bindable tries to listen on each port of ip; it returns the first port that fails, and why.
func bindable(ip string, ports []int32) (int32, error) {
	for _, p := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(int(p))))
		if err != nil {
			return p, err
		}
		l.Close()
	}
	return 0, nil
}

// shutdown stops every pod's processes: SIGTERM, SIGKILL after grace.
// No preStop hooks and no status: the cluster is going away.
func (a *Agent) shutdown(grace time.Duration) {
	a.mu.Lock()
	ps := slices.Collect(maps.Values(a.running))
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range ps {
		p.mu.Lock()
		if !p.terminating {
			p.terminating = true
			close(p.stop)
		}
		cs := p.containers
		p.mu.Unlock()
		for _, c := range cs {
			wg.Go(func() {
				c.kill("", grace)
				<-c.loopDone
			})
		}
	}
	wg.Wait()
	for _, p := range ps {
		a.removeCgroup(p)
		_ = os.RemoveAll(p.dir)
	}
}

// memTotal is the machine's memory from /proc/meminfo.
func memTotal() resource.Quantity {
	b, err := os.ReadFile("/proc/meminfo")
	if err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) >= 2 && f[0] == "MemTotal:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					return *resource.NewQuantity(kb*1024, resource.BinarySI)
				}
			}
		}
	}
	return resource.MustParse("4Gi")
}

// levelFilter drops records below a level.
type levelFilter struct {
	slog.Handler
	min slog.Level
}

func (h levelFilter) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFilter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return levelFilter{h.Handler.WithAttrs(attrs), h.min}
}

func (h levelFilter) WithGroup(name string) slog.Handler {
	return levelFilter{h.Handler.WithGroup(name), h.min}
}
