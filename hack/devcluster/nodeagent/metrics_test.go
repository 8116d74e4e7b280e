package nodeagent

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
)

// The families served on /metrics/resource have the kubelet's names,
// labels and values, in Prometheus text.
func TestResourceMetrics(t *testing.T) {
	now := time.Unix(1700000000, 0)
	started := time.Unix(1699999000, 500_000_000)
	fams := resourceMetrics(now, cgroups.Usage{CPU: 90 * time.Second, WorkingSet: 4 << 30}, []podUsage{{
		namespace: "default", name: "demo-1",
		usage:      cgroups.Usage{CPU: 1500 * time.Millisecond, WorkingSet: 30 << 20},
		containers: []containerUsage{{name: "pacer-api", started: started, usage: cgroups.Usage{CPU: 1500 * time.Millisecond, WorkingSet: 30 << 20}}},
	}})
	// As virtual-kubelet's api.HandlePodMetricsResource encodes them.
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range fams {
		if err := enc.Encode(f); err != nil {
			t.Fatal(err)
		}
	}
	text := buf.String()
	for _, want := range []string{
		"# TYPE node_cpu_usage_seconds_total counter",
		"node_cpu_usage_seconds_total 90 1700000000000",
		"node_memory_working_set_bytes 4.294967296e+09 1700000000000",
		`container_cpu_usage_seconds_total{container="pacer-api",namespace="default",pod="demo-1"} 1.5 1700000000000`,
		`container_memory_working_set_bytes{container="pacer-api",namespace="default",pod="demo-1"} 3.145728e+07 1700000000000`,
		`container_start_time_seconds{container="pacer-api",namespace="default",pod="demo-1"} 1.6999990005e+09 1699999000500`,
		`pod_cpu_usage_seconds_total{namespace="default",pod="demo-1"} 1.5 1700000000000`,
		`pod_memory_working_set_bytes{namespace="default",pod="demo-1"} 3.145728e+07 1700000000000`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestNodeUsage(t *testing.T) {
	u, err := nodeUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.WorkingSet <= 0 {
		t.Errorf("node usage %+v; want CPU time and working set > 0", u)
	}
}
