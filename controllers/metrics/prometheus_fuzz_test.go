package metrics

import (
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// answer is a RoundTripper that answers every request with one body, so
// the whole decoding path (client_golang's and ours) runs in-process.
type answer struct {
	status int
	body   []byte
}

func (a answer) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: a.status,
		Header:     http.Header{"Content-Type": []string{"application/json"}},
		Body:       io.NopCloser(strings.NewReader(string(a.body))),
		Request:    req,
	}, nil
}

// FuzzPrometheusAnswer feeds arbitrary answers to the Prometheus source:
// none may panic, and a window made of one is within sane bounds.
// `go test` runs the seeds; `go test -fuzz FuzzPrometheusAnswer` explores.
func FuzzPrometheusAnswer(f *testing.F) {
	vec := func(results string) string {
		return `{"status":"success","data":{"resultType":"vector","result":[` + results + `]}}`
	}
	sample := func(name, pod, value string) string {
		labels := `"pacer_result":"` + name + `"`
		if pod != "" {
			labels += `,"pod":"` + pod + `"`
		}
		return `{"metric":{` + labels + `},"value":[1700000000,"` + value + `"]}`
	}
	for _, seed := range []string{
		`{"status":"success"}`,
		`{"status":"success","data":null}`,
		`{"status":"success","data":{}}`,
		`{"status":"success","data":{"resultType":"vector"}}`,
		`{"status":"success","data":{"resultType":"matrix","result":[]}}`,
		`{"status":"success","data":{"resultType":"scalar","result":[1700000000,"1"]}}`,
		`{"status":"success","data":{"resultType":"string","result":[1700000000,"x"]}}`,
		`{"status":"success","data":{"resultType":"vector","result":{"not":"a list"}}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":null,"value":null}]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[null]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pacer_result":7},"value":[1,2]}]}}`,
		`{"status":"error","errorType":"bad_data","error":"parse error"}`,
		`{"status":"success","data":{"resultType":"vector","result":[]},"warnings":["w"]}`,
		`not json`,
		``,
		vec(sample(qGenSamples, "p", "NaN") + "," + sample(qGenLast, "p", "NaN") + "," + sample(qUp, "p", "1")),
		vec(sample(qGenSamples, "p", "5") + "," + sample(qGenLast, "p", "1e308") + "," + sample(qGenMin, "p", "-1e308") + "," + sample(qUp, "p", "+Inf")),
		vec(sample(qRequests, "", "1e308") + "," + sample(qRequestRate, "", "+Inf") + "," + sample(qWorkerLimit, "", "1e300") +
			"," + sample(qInSystem, "", "1e300") + "," + sample(qFinished, "", "1") + "," + sample(qP99, "", "1e300") +
			"," + sample(qPoolWait, "", "1e300") + "," + sample(qPoolAcquires, "", "1e-300") + "," + sample(qCacheHits, "", "-5")),
		vec(sample(qGenSamples, "p", "10") + "," + sample(qGenLast, "p", "3") + "," + sample(qGenMin, "p", "3") + "," +
			sample(qGenMax, "p", "3") + "," + sample(qUp, "p", "1") + "," + sample(qRequests, "", "500") + "," +
			sample(qRequestRate, "", "10") + "," + sample(qWorkerLimit, "", "64") + "," + sample(qP99, "", "0.05")),
	} {
		f.Add(200, []byte(seed))
	}
	f.Add(500, []byte(`{"status":"error","errorType":"execution","error":"boom"}`))
	f.Add(302, []byte(``))

	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 200
		}
		p, err := NewPrometheus(PrometheusOptions{
			URL:    "http://prometheus.monitoring.svc:9090",
			Client: &http.Client{Transport: answer{status: status, body: body}},
			Now:    func() time.Time { return time.Unix(1700000000, 0) },
		})
		if err != nil {
			t.Fatal(err)
		}
		w, err := p.Observe(context.Background(), Target{
			Namespace: "ns", Name: "svc", Pods: []Pod{{Name: "p"}}, Generation: 3, MinRequests: 50, Interval: time.Minute,
		})
		if err != nil {
			return
		}
		for name, v := range map[string]float64{
			"RequestRate": w.RequestRate, "ErrorRate": w.ErrorRate, "InFlight": w.InFlight, "Utilization": w.Utilization,
			"QueueLength": w.QueueLength, "CacheHitRatio": w.CacheHitRatio, "CPUCores": w.CPUCores,
		} {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				t.Errorf("%s = %v from %q", name, v, body)
			}
		}
		if w.Utilization > 1 || w.CacheHitRatio > 1 {
			t.Errorf("a ratio above 1: utilization %v, cache hits %v", w.Utilization, w.CacheHitRatio)
		}
		if w.P50 < 0 || w.P99 < 0 || w.PoolAcquireWait < 0 || w.WorkerLimit < 0 || w.PoolMaxConns < 0 || w.Generation < 0 {
			t.Errorf("a negative figure from %q: %+v", body, w)
		}
	})
}
