package metrics

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	m "github.com/pacer-dev/pacer/service/metrics"
)

func TestParseSample(t *testing.T) {
	t.Parallel()
	// An exposition as pacer-api writes it, trimmed: two histogram series
	// (their buckets add up by le), a redis layer that must not count as
	// the local cache, and the process collector's CPU and start time.
	text := fmt.Sprintf(`# TYPE %[1]s counter
%[1]s{code="2xx",method="GET",route="/v1/users/{id}"} 90
%[1]s{code="5xx",method="GET",route="/v1/users/{id}"} 7
%[1]s{code="5xx",method="POST",route="/v1/users"} 3
# TYPE %[2]s histogram
%[2]s_bucket{code="2xx",method="GET",route="/v1/users/{id}",le="0.01"} 80
%[2]s_bucket{code="2xx",method="GET",route="/v1/users/{id}",le="0.1"} 90
%[2]s_bucket{code="2xx",method="GET",route="/v1/users/{id}",le="+Inf"} 90
%[2]s_sum{code="2xx",method="GET",route="/v1/users/{id}"} 0.5
%[2]s_count{code="2xx",method="GET",route="/v1/users/{id}"} 90
%[2]s_bucket{code="5xx",method="GET",route="/v1/users/{id}",le="0.01"} 0
%[2]s_bucket{code="5xx",method="GET",route="/v1/users/{id}",le="0.1"} 6
%[2]s_bucket{code="5xx",method="GET",route="/v1/users/{id}",le="+Inf"} 10
%[2]s_sum{code="5xx",method="GET",route="/v1/users/{id}"} 9
%[2]s_count{code="5xx",method="GET",route="/v1/users/{id}"} 10
# TYPE %[3]s counter
%[3]s{reason="queue_full"} 4
%[3]s{reason="queue_timeout"} 1
# TYPE %[4]s counter
%[4]s{layer="local"} 60
%[4]s{layer="redis"} 20
# TYPE %[5]s counter
%[5]s{layer="local"} 40
%[5]s{layer="redis"} 20
# TYPE %[6]s gauge
%[6]s 12
# TYPE %[7]s gauge
%[7]s 3
# TYPE %[8]s gauge
%[8]s 7
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 1.5
# TYPE process_start_time_seconds gauge
process_start_time_seconds 1.7e+09
`, m.RequestsTotal, m.RequestDuration, m.QueueRejectionsTotal, m.CacheHitsTotal, m.CacheMissesTotal,
		m.RequestsInFlight, m.DBPoolMaxConns, m.ConfigGeneration)

	got, err := parseSample(strings.NewReader(text), t0)
	if err != nil {
		t.Fatal(err)
	}
	want := sample{
		At: t0, HasGeneration: true, Generation: 7, StartTime: 1.7e9,
		Requests: 100, Errors: 10, Shed: 5,
		CacheHits: 60, CacheMisses: 40, CPUSeconds: 1.5,
		Latency: histogram{
			Buckets: []bucket{{0.01, 80}, {0.1, 96}, {inf, 100}},
			Count:   100, Sum: 9.5,
		},
		InFlight: 12, PoolMax: 3,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseSample (-want +got):\n%s", diff)
	}
}

func TestParseSampleMissingMetrics(t *testing.T) {
	t.Parallel()
	// An exposition with none of pacer-api's metrics reads as zeros, without
	// a generation; nothing fails or panics.
	got, err := parseSample(strings.NewReader("# TYPE go_goroutines gauge\ngo_goroutines 7\n"), t0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sample{At: t0}, got); diff != "" {
		t.Errorf("parseSample (-want +got):\n%s", diff)
	}
	w := buildWindow([]podSpan{{Name: "a", Scrapes: []sample{got, {At: t0.Add(10e9)}}}}, Target{Pods: []Pod{{Name: "a"}}, Generation: 1})
	if w.Sufficient || !strings.Contains(w.Reason, "do not report "+m.ConfigGeneration) {
		t.Errorf("window of pods without pacer metrics: Sufficient=%v Reason=%q", w.Sufficient, w.Reason)
	}

	// Lines of other families are never parsed; a broken line of one it
	// reads is an error.
	if _, err := parseSample(strings.NewReader(m.ConfigGeneration+"{not an exposition"), t0); err == nil {
		t.Error("garbage parsed without an error")
	}
}

// FuzzWindowFromExpositions: whatever two expositions say (missing metrics,
// odd values, histograms without +Inf), nothing panics and the window holds
// no NaN or negative rate.
func FuzzWindowFromExpositions(f *testing.F) {
	f.Add("pacer_config_generation 1\npacer_http_requests_total{code=\"2xx\"} 5\n", "pacer_config_generation 1\npacer_http_requests_total{code=\"2xx\"} 2\n")
	f.Add("# TYPE "+m.RequestDuration+" histogram\n"+m.RequestDuration+"_bucket{le=\"0.1\"} 3\n"+m.RequestDuration+"_count 3\n", "")
	f.Add("process_start_time_seconds NaN\n"+m.WorkerLimit+" -5\n", m.WorkerLimit+" +Inf\n")
	f.Add(m.RequestsInFlight+" -3\n", m.RequestsInFlight+" -3\n"+m.QueueLength+" -1\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		sa, errA := parseSample(strings.NewReader(a), t0)
		sb, errB := parseSample(strings.NewReader(b), t0.Add(10e9))
		if errA != nil || errB != nil {
			return
		}
		w := buildWindow([]podSpan{{Name: "p", Scrapes: []sample{sa, sb}}}, Target{Pods: []Pod{{Name: "p"}}})
		for name, v := range map[string]float64{
			"RequestRate": w.RequestRate, "ErrorRate": w.ErrorRate, "ShedRate": w.ShedRate,
			"RateLimitedRate": w.RateLimitedRate, "InFlight": w.InFlight, "Utilization": w.Utilization,
			"CacheHitRatio": w.CacheHitRatio, "CacheLookupRate": w.CacheLookupRate, "CPUCores": w.CPUCores,
		} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Errorf("%s = %v", name, v)
			}
		}
		if w.P50 < 0 || w.P99 < 0 || w.PoolAcquireWait < 0 {
			t.Errorf("negative durations: %+v", w)
		}
	})
}
