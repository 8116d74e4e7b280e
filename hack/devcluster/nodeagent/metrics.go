package nodeagent

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/ptr"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
)

// podUsage is one pod's usage, and its containers', for /metrics/resource.
type podUsage struct {
	namespace, name string
	usage           cgroups.Usage
	containers      []containerUsage
}

type containerUsage struct {
	name    string
	started time.Time
	usage   cgroups.Usage
}

// MetricsResource is the kubelet's /metrics/resource, the endpoint
// metrics-server scrapes: the node's CPU time and memory working set, and
// each running pod's and container's, read from their cgroups
// (virtual-kubelet's api.HandlePodMetricsResource serves it).
func (a *Agent) MetricsResource(ctx context.Context) ([]*dto.MetricFamily, error) {
	if a.opts.Cgroups == nil {
		return nil, errors.New("pod limits are not enforced (no cgroups), so there is no per-pod usage")
	}
	node, err := nodeUsage()
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	ps := slices.Collect(maps.Values(a.running))
	a.mu.Unlock()
	var pods []podUsage
	for _, p := range ps {
		p.mu.Lock()
		uid, ns := string(p.pod.UID), p.pod.Namespace
		type running struct {
			name    string
			started time.Time
			group   *cgroups.Group
		}
		var cs []running
		for _, c := range p.containers {
			if c.running && c.group != nil {
				cs = append(cs, running{c.spec.Name, c.startedAt, c.group})
			}
		}
		p.mu.Unlock()
		if len(cs) == 0 {
			continue
		}
		pu := podUsage{namespace: ns, name: p.name}
		if pu.usage, err = a.opts.Cgroups.Pod(uid).Usage(); err != nil {
			continue // the pod went away meanwhile
		}
		for _, c := range cs {
			u, err := c.group.Usage()
			if err != nil {
				continue
			}
			pu.containers = append(pu.containers, containerUsage{c.name, c.started, u})
		}
		pods = append(pods, pu)
	}
	return resourceMetrics(time.Now(), node, pods), nil
}

// resourceMetrics builds the metric families the kubelet serves on
// /metrics/resource, with the same names, labels and types.
func resourceMetrics(now time.Time, node cgroups.Usage, pods []podUsage) []*dto.MetricFamily {
	ts := ptr.To(now.UnixMilli())
	family := func(name, help string, t dto.MetricType) *dto.MetricFamily {
		return &dto.MetricFamily{Name: ptr.To(name), Help: ptr.To(help), Type: t.Enum()}
	}
	sample := func(t dto.MetricType, v float64, labels ...string) *dto.Metric {
		m := &dto.Metric{TimestampMs: ts}
		for i := 0; i+1 < len(labels); i += 2 {
			m.Label = append(m.Label, &dto.LabelPair{Name: ptr.To(labels[i]), Value: ptr.To(labels[i+1])})
		}
		if t == dto.MetricType_COUNTER {
			m.Counter = &dto.Counter{Value: ptr.To(v)}
		} else {
			m.Gauge = &dto.Gauge{Value: ptr.To(v)}
		}
		return m
	}
	counter, gauge := dto.MetricType_COUNTER, dto.MetricType_GAUGE
	nodeCPU := family("node_cpu_usage_seconds_total", "Cumulative cpu time consumed by the node in core-seconds", counter)
	nodeMem := family("node_memory_working_set_bytes", "Current working set of the node in bytes", gauge)
	podCPU := family("pod_cpu_usage_seconds_total", "Cumulative cpu time consumed by the pod in core-seconds", counter)
	podMem := family("pod_memory_working_set_bytes", "Current working set of the pod in bytes", gauge)
	cCPU := family("container_cpu_usage_seconds_total", "Cumulative cpu time consumed by the container in core-seconds", counter)
	cMem := family("container_memory_working_set_bytes", "Current working set of the container in bytes", gauge)
	cStart := family("container_start_time_seconds", "Start time of the container since unix epoch in seconds", gauge)
	nodeCPU.Metric = []*dto.Metric{sample(counter, node.CPU.Seconds())}
	nodeMem.Metric = []*dto.Metric{sample(gauge, float64(node.WorkingSet))}
	for _, p := range pods {
		podCPU.Metric = append(podCPU.Metric, sample(counter, p.usage.CPU.Seconds(), "namespace", p.namespace, "pod", p.name))
		podMem.Metric = append(podMem.Metric, sample(gauge, float64(p.usage.WorkingSet), "namespace", p.namespace, "pod", p.name))
		for _, c := range p.containers {
			labels := []string{"container", c.name, "namespace", p.namespace, "pod", p.name}
			cCPU.Metric = append(cCPU.Metric, sample(counter, c.usage.CPU.Seconds(), labels...))
			cMem.Metric = append(cMem.Metric, sample(gauge, float64(c.usage.WorkingSet), labels...))
			start := sample(gauge, float64(c.started.UnixNano())/1e9, labels...)
			start.TimestampMs = ptr.To(c.started.UnixMilli())
			cStart.Metric = append(cStart.Metric, start)
		}
	}
	out := []*dto.MetricFamily{nodeCPU, nodeMem}
	for _, f := range []*dto.MetricFamily{cCPU, cMem, cStart, podCPU, podMem} {
		if len(f.Metric) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// nodeUsage is the machine's CPU time (all but idle and iowait, from
// /proc/stat) and memory working set (total less available, /proc/meminfo).
func nodeUsage() (cgroups.Usage, error) {
	var u cgroups.Usage
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return u, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal …
	if len(f) < 9 || f[0] != "cpu" {
		return u, errors.New("/proc/stat: no cpu line")
	}
	const userHZ = 100 // USER_HZ, 100 on every Linux architecture Go supports
	var ticks int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		n, _ := strconv.ParseInt(f[i], 10, 64)
		ticks += n
	}
	u.CPU = time.Duration(ticks) * time.Second / userHZ
	mem := map[string]int64{}
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return u, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			mem[k] = n * 1024
		}
	}
	u.WorkingSet = mem["MemTotal"] - mem["MemAvailable"]
	return u, nil
}
