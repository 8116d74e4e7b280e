package scenario

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/service/metrics"
)

// Sample is the cluster's state at one moment.
type Sample struct {
	At time.Time `json:"at"`
	// Pods: existing (not finished) pods, ready pods, and the sum of their
	// restart counts.
	Pods, ReadyPods int   `json:"-"`
	Restarts        int32 `json:"-"`
	// Replicas, Workers, Pool are the settings in effect (status.effective).
	Replicas, Workers, Pool int32 `json:"-"`
	CacheMaxEntries         int32 `json:"-"`
	// PoolTotal is Σ pool max conns over every running pod, from their metrics.
	PoolTotal int `json:"-"`
	// PGConns are the open connections to the database.
	PGConns int `json:"-"`
	// Generations are the config generations the pods report, by pod name.
	Generations map[string]int64 `json:"-"`
	// CacheHit is the tuner's last observed cache hit ratio (percent, -1 unknown).
	CacheHit int32 `json:"-"`
	// ObservedP99 is the tuner's last observed p99.
	ObservedP99 time.Duration `json:"-"`
	// Tuned is the Tuned condition's reason and message.
	TunedReason, TunedMessage string `json:"-"`
	// History is status.history.
	History []pacerv1.Decision `json:"-"`
	// HPA is the HPA's status, when the run has one.
	HPA *HPASample `json:"-"`
}

// Sampler reads the TunedService, its pods and the database.
type Sampler struct {
	C        client.Client
	TS       *pacerv1.TunedService
	Database string
	PG       *pgx.Conn
	// HPA, when set, names an HPA to sample too.
	HPA  string
	http *http.Client
	mu   sync.Mutex
}

// Take one sample.
func (s *Sampler) Take(ctx context.Context) (Sample, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http == nil {
		s.http = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	}
	out := Sample{At: time.Now(), CacheHit: -1, Generations: map[string]int64{}}
	ts := &pacerv1.TunedService{}
	if err := s.C.Get(ctx, client.ObjectKeyFromObject(s.TS), ts); err != nil {
		return out, err
	}
	if e := ts.Status.Effective; e != nil {
		out.Replicas, out.Workers, out.Pool, out.CacheMaxEntries = e.Replicas, e.MaxInFlight, e.PoolMaxConns, e.CacheMaxEntries
	}
	if o := ts.Status.LastObservation; o != nil {
		if o.CacheHitRatio != nil {
			out.CacheHit = *o.CacheHitRatio
		}
		if o.LatencyP99 != nil {
			out.ObservedP99 = o.LatencyP99.Duration
		}
	}
	if c := meta.FindStatusCondition(ts.Status.Conditions, pacerv1.ConditionTuned); c != nil {
		out.TunedReason, out.TunedMessage = c.Reason, c.Message
	}
	out.History = ts.Status.History

	var pods corev1.PodList
	if err := s.C.List(ctx, &pods, client.InNamespace(ts.Namespace), client.MatchingLabels(render.SelectorLabels(ts))); err != nil {
		return out, err
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out.Pods++
		for _, cs := range p.Status.ContainerStatuses {
			out.Restarts += cs.RestartCount
		}
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				out.ReadyPods++
			}
		}
		if p.Status.PodIP == "" {
			continue
		}
		m, err := s.scrape(ctx, p.Status.PodIP)
		if err != nil {
			continue
		}
		out.PoolTotal += int(m[metrics.DBPoolMaxConns])
		if g, ok := m[metrics.ConfigGeneration]; ok {
			out.Generations[p.Name] = int64(g)
		}
	}
	if s.HPA != "" {
		if h, err := SampleHPA(ctx, s.C, ts.Namespace, s.HPA); err == nil {
			out.HPA = h
		}
	}
	if s.PG != nil {
		n, err := Connections(ctx, s.PG, s.Database)
		if err == nil {
			out.PGConns = n
		}
	}
	return out, nil
}

// scrape reads the unlabelled gauges of a pod's /metrics.
func (s *Sampler) scrape(ctx context.Context, ip string) (map[string]float64, error) {
	return ScrapeGauges(ctx, s.http, net.JoinHostPort(ip, strconv.Itoa(render.AdminPort)))
}

// ScrapeGauges reads the metrics without labels from addr's /metrics.
func ScrapeGauges(ctx context.Context, hc *http.Client, addr string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: HTTP %d", res.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || strings.Contains(line, "{") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out, sc.Err()
}

// LastDecision describes the newest applied or recommended decision.
func LastDecision(h []pacerv1.Decision) string {
	if len(h) == 0 {
		return "-"
	}
	d := h[0]
	var parts []string
	for _, c := range d.Changes {
		parts = append(parts, fmt.Sprintf("%s %d→%d (%s)", c.Setting, c.From, c.To, c.Reason))
	}
	verb := "recommended"
	if d.Applied {
		verb = "applied"
	}
	return fmt.Sprintf("%s %s: %s", d.Time.Format("15:04:05"), verb, strings.Join(parts, "; "))
}
