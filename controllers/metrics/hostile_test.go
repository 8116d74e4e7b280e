package metrics

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// promAnswer is a Prometheus source whose every query is answered with body.
func promAnswer(t *testing.T, body string) *Prometheus {
	t.Helper()
	p, err := NewPrometheus(PrometheusOptions{
		URL:    "http://prometheus.monitoring.svc:9090",
		Client: &http.Client{Transport: answer{status: http.StatusOK, body: []byte(body)}},
		Now:    func() time.Time { return time.Unix(1700000000, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A syntactically valid answer may hold a null sample: it is a bad answer,
// not a panic in the observer's goroutine.
func TestPrometheusNullSample(t *testing.T) {
	t.Parallel()
	for _, body := range []string{
		`{"status":"success","data":{"resultType":"vector","result":[null]}}`,
		`{"status":"success","data":{"resultType":"vector","result":[{"metric":{"pacer_result":"up","pod":"p"},"value":[1,"1"]},null]}}`,
	} {
		_, err := promAnswer(t, body).Observe(context.Background(), target)
		if err == nil {
			t.Errorf("%s: no error, want a bad answer", body)
		}
	}
}

// panicky is a RoundTripper that panics, as a bug reading a hostile
// answer would.
type panicky struct{}

func (panicky) RoundTrip(*http.Request) (*http.Response, error) { panic("a bug reading the answer") }

// A panic while scraping one pod (on the scrape's own goroutine, which no
// caller can recover) is that pod's failed scrape.
func TestPodScrapePanicIsThatPodsProblem(t *testing.T) {
	t.Parallel()
	p := NewPods(PodsOptions{Client: &http.Client{Transport: panicky{}}})
	w, err := p.Observe(context.Background(), Target{Namespace: "ns", Name: "svc", Interval: time.Minute,
		Pods: []Pod{{Name: "p", Host: "10.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if w.Sufficient || w.Pods != 0 || !strings.Contains(w.Reason, "p: ") {
		t.Errorf("window %+v; want pod p not observed", w)
	}
}
