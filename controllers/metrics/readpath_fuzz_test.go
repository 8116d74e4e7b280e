package metrics

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pacer-dev/pacer/controllers/tuning"
	m "github.com/pacer-dev/pacer/service/metrics"
)

// wireClient is a client whose every connection is answered with raw, the
// bytes on the wire: the real http.Transport parses them (status line,
// headers, chunked or fixed length, transparent gzip) before the sources
// read the body.
func wireClient(raw []byte) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(context.Context, string, string) (net.Conn, error) {
			client, server := net.Pipe()
			go func() {
				defer server.Close()
				if req, err := http.ReadRequest(bufio.NewReader(server)); err == nil {
					_, _ = io.Copy(io.Discard, req.Body)
				}
				_, _ = server.Write(raw) // returns when the client closes, if it stops reading
			}()
			return client, nil
		},
	}}
}

// wireResponse is an HTTP/1.1 response with body, gzip-encoded when zip,
// chunked when chunked.
func wireResponse(contentType string, body []byte, zip, chunked bool) []byte {
	if zip {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = buf.Bytes()
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n", contentType)
	if zip {
		b.WriteString("Content-Encoding: gzip\r\n")
	}
	if chunked {
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for len(body) > 0 {
			n := min(len(body), 1000)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
			body = body[n:]
		}
		b.WriteString("0\r\n\r\n")
		return b.Bytes()
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// FuzzReadPath feeds arbitrary bytes on the wire to both sources, through
// the real transport, the bounds, the parsers and the window: nothing may
// panic, and a window made of them is within sane bounds. The seeds are
// compressed, chunked, truncated, nested and oversized answers.
// `go test` runs the seeds; `go test -fuzz FuzzReadPath -fuzztime 10s` explores.
func FuzzReadPath(f *testing.F) {
	exposition := []byte(fmt.Sprintf("# TYPE %[1]s gauge\n%[1]s 3\n# TYPE %[2]s counter\n%[2]s{code=\"2xx\"} 100\n"+
		"# TYPE %[3]s histogram\n%[3]s_bucket{le=\"0.01\"} 90\n%[3]s_bucket{le=\"+Inf\"} 100\n%[3]s_sum 0.5\n%[3]s_count 100\n",
		m.ConfigGeneration, m.RequestsTotal, m.RequestDuration))
	answer := []byte(`{"status":"success","data":{"resultType":"vector","result":[` +
		`{"metric":{"pacer_result":"gen_samples","pod":"p"},"value":[1700000000,"10"]},` +
		`{"metric":{"pacer_result":"gen_last","pod":"p"},"value":[1700000000,"3"]},` +
		`{"metric":{"pacer_result":"up","pod":"p"},"value":[1700000000,"1"]},` +
		`{"metric":{"pacer_result":"requests"},"value":[1700000000,"500"]}]}}`)
	nested := []byte(`{"status":"success","data":{"resultType":"vector","result":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`)
	var buckets strings.Builder
	fmt.Fprintf(&buckets, "# TYPE %s histogram\n", m.RequestDuration)
	for i := range 300 {
		fmt.Fprintf(&buckets, "%s_bucket{le=\"%d\"} %d\n", m.RequestDuration, i, i)
	}
	for _, body := range [][]byte{exposition, answer, nested, []byte(buckets.String())} {
		for _, ct := range []string{"text/plain; version=0.0.4", "application/json"} {
			f.Add(wireResponse(ct, body, false, false))
			f.Add(wireResponse(ct, body, true, false))
			f.Add(wireResponse(ct, body, true, true))
			whole := wireResponse(ct, body, true, false)
			f.Add(whole[:len(whole)*2/3]) // truncated mid-body
		}
	}
	// Oversized once inflated: 2 MiB of blanks from a few KiB, past both
	// sources' caps (kept compressed only: the corpus stays small).
	big := bytes.Repeat([]byte(" "), 2<<20)
	f.Add(wireResponse("application/json", append(append([]byte(`{"status":"success","data":`), big...), '}'), true, false))
	f.Add(wireResponse("text/plain", append(exposition, big...), true, true))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 99999999\r\n\r\nshort"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\n\x1f\x8b\x08\x00"))
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\n"))
	f.Add([]byte("HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\nContent-Length: 0\r\n\r\n"))
	f.Add([]byte("not http at all"))

	f.Fuzz(readPath)
}

// readPath runs raw through both sources; see FuzzReadPath.
func readPath(t *testing.T, raw []byte) {
	tg := Target{Namespace: "ns", Name: "svc", Pods: []Pod{{Name: "p", Host: "10.0.0.1"}}, Generation: 3, MinRequests: 50} // Interval 0: MinSpan makes the window
	budget := NewBudget(8 << 20)
	pods := NewPods(PodsOptions{Client: wireClient(raw), Timeout: 300 * time.Millisecond, MinSpan: time.Nanosecond, MaxBodyBytes: 1 << 20, Budget: budget})
	for range 2 {
		w, err := pods.Observe(context.Background(), tg)
		if err != nil {
			t.Fatalf("Pods.Observe: %v (a failed scrape is a window, not an error)", err)
		}
		checkWindow(t, w, raw)
	}
	prom, err := NewPrometheus(PrometheusOptions{
		URL: "http://prometheus.monitoring.svc:9090", Client: wireClient(raw), Timeout: 300 * time.Millisecond, Budget: budget,
		Now: func() time.Time { return time.Unix(1700000000, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if w, err := prom.Observe(context.Background(), tg); err == nil {
		checkWindow(t, w, raw)
	}
	// Every answer gave its budget back.
	if a, err := budget.open(context.Background()); err != nil || a.cover(8<<20) != nil {
		t.Errorf("budget not given back after the answers: %v", err)
	} else {
		a.close()
	}
}

// checkWindow fails t if w holds a figure no answer should make.
func checkWindow(t *testing.T, w tuning.Window, input []byte) {
	t.Helper()
	for name, v := range map[string]float64{
		"RequestRate": w.RequestRate, "ErrorRate": w.ErrorRate, "ShedRate": w.ShedRate, "InFlight": w.InFlight,
		"Utilization": w.Utilization, "QueueLength": w.QueueLength, "CacheHitRatio": w.CacheHitRatio, "CPUCores": w.CPUCores,
	} {
		if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
			t.Errorf("%s = %v from %q", name, v, input[:min(len(input), 200)])
		}
	}
	if w.Utilization > 1 || w.CacheHitRatio > 1 {
		t.Errorf("a ratio above 1: utilization %v, cache hits %v", w.Utilization, w.CacheHitRatio)
	}
	if w.P50 < 0 || w.P99 < 0 || w.PoolAcquireWait < 0 || w.WorkerLimit < 0 || w.PoolMaxConns < 0 || w.Generation < 0 || w.Pods > 1 {
		t.Errorf("a figure out of range: %+v", w)
	}
}

// The wire harness reads a good answer as one: the fuzz target is not
// failing every input before the parsers see it.
func TestWireHarness(t *testing.T) {
	t.Parallel()
	exposition := fmt.Sprintf("# TYPE %[1]s gauge\n%[1]s 3\n# TYPE %[2]s counter\n%[2]s{code=\"2xx\"} 100\n", m.ConfigGeneration, m.RequestsTotal)
	tg := Target{Namespace: "ns", Name: "svc", Pods: []Pod{{Name: "p", Host: "10.0.0.1"}}, Generation: 3}
	pods := NewPods(PodsOptions{Client: wireClient(wireResponse("text/plain", []byte(exposition), true, true)), MinSpan: time.Nanosecond})
	var w tuning.Window
	for range 2 {
		var err error
		if w, err = pods.Observe(context.Background(), tg); err != nil {
			t.Fatal(err)
		}
	}
	if w.Pods != 1 || !w.Sufficient {
		t.Errorf("Pods source over gzip, chunked: %+v", w)
	}
	answer := `{"status":"success","data":{"resultType":"vector","result":[` +
		`{"metric":{"pacer_result":"gen_samples","pod":"p"},"value":[1700000000,"10"]},` +
		`{"metric":{"pacer_result":"gen_last","pod":"p"},"value":[1700000000,"3"]},` +
		`{"metric":{"pacer_result":"gen_min","pod":"p"},"value":[1700000000,"3"]},` +
		`{"metric":{"pacer_result":"gen_max","pod":"p"},"value":[1700000000,"3"]},` +
		`{"metric":{"pacer_result":"up","pod":"p"},"value":[1700000000,"1"]}]}}`
	prom, err := NewPrometheus(PrometheusOptions{URL: "http://prometheus.monitoring.svc:9090",
		Client: wireClient(wireResponse("application/json", []byte(answer), true, false))})
	if err != nil {
		t.Fatal(err)
	}
	if w, err = prom.Observe(context.Background(), tg); err != nil || w.Pods != 1 {
		t.Errorf("Prometheus source over gzip: %+v, %v", w, err)
	}
}
