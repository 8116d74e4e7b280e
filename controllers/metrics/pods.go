package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/pacer-dev/pacer/controllers/observe"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// errPanic stands for a panic recovered while reading an answer; the panic
// itself goes to the operator's log.
var errPanic = errors.New("reading the answer failed (an operator bug, logged)")

// PodsOptions configure a Pods source. The zero value is usable.
type PodsOptions struct {
	// Client makes the scrapes; nil means a client of its own with
	// keep-alives, no proxy, a 5s dial timeout, and a dial policy that
	// refuses addresses no pod has (link-local and cloud metadata,
	// unspecified, multicast, NAT64).
	Client *http.Client
	// Path is the metrics path on the admin port; default "/metrics".
	Path string
	// Timeout bounds each scrape; default 5s.
	Timeout time.Duration
	// Concurrency bounds the scrapes in flight for one target (one
	// Observe call); default 8. It is per target so that a target whose
	// pods hang never holds a slot another target needs: the observers
	// (controllers/observe) bound how many targets are observed at once.
	Concurrency int
	// MaxScrapes is how many scrapes are kept per pod; default 4, at least 3.
	MaxScrapes int
	// MaxBodyBytes bounds an exposition, decompressed; default 16 MiB.
	MaxBodyBytes int64
	// Budget bounds the bytes of answers held at once across every scrape
	// and query; nil means no bound but MaxBodyBytes.
	Budget *Budget
	// MinSpan is the shortest window when Target.Interval/2 is shorter;
	// default 1s.
	MinSpan time.Duration
	// MaxAge drops scrapes older than max(MaxAge, 3 × Target.Interval), so a
	// target observed again after a pause starts a fresh window, and forgets
	// a target not observed for that long; default 10m.
	MaxAge time.Duration
}

func (o PodsOptions) withDefaults() PodsOptions {
	if o.Client == nil {
		o.Client = &http.Client{Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: podDialControl}).DialContext,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     2 * time.Minute,
		}}
	}
	if o.Path == "" {
		o.Path = "/metrics"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.MaxScrapes <= 0 {
		o.MaxScrapes = 4
	}
	o.MaxScrapes = max(o.MaxScrapes, 3)
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 16 << 20
	}
	if o.MinSpan <= 0 {
		o.MinSpan = time.Second
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 10 * time.Minute
	}
	return o
}

// Pods scrapes each ready pod's admin /metrics endpoint and keeps the last
// few scrapes per pod. Each Observe scrapes every pod of the target once;
// the window of a pod runs from the newest earlier scrape at least
// max(MinSpan, Interval/2) old to the new one, so calling Observe once per
// interval gives windows one interval long.
type Pods struct {
	o PodsOptions

	mu      sync.Mutex
	targets map[targetKey]*targetHistory
}

type targetHistory struct {
	lastSeen time.Time
	maxAge   time.Duration
	pods     map[string]*podHistory
}

type podHistory struct {
	uid, addr string
	scrapes   []sample // oldest first
}

var _ Source = (*Pods)(nil)

// NewPods returns a Pods source.
func NewPods(o PodsOptions) *Pods {
	o = o.withDefaults()
	return &Pods{o: o, targets: map[targetKey]*targetHistory{}}
}

// Forget drops the scrapes kept for a TunedService.
func (p *Pods) Forget(namespace, name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.targets, targetKey{namespace, name})
}

// Observe scrapes every pod of t once, concurrently, and returns the window
// ending with these scrapes. A pod that cannot be scraped makes the window
// insufficient, not an error; errors are a bad Target or ctx ending.
func (p *Pods) Observe(ctx context.Context, t Target) (tuning.Window, error) {
	if err := t.validate(true); err != nil {
		return tuning.Window{}, err
	}
	results := p.scrapeAll(ctx, t)
	if err := ctx.Err(); err != nil {
		return tuning.Window{}, fmt.Errorf("metrics: observe %s/%s: %w", t.Namespace, t.Name, err)
	}
	spans := p.record(t, results, time.Now())
	return buildWindow(spans, t), nil
}

type scrapeResult struct {
	sample sample
	err    error
}

// scrapeAll scrapes t's pods, at most Concurrency at once. A scrape runs on
// a goroutine of its own, where no caller could recover a panic: a panic
// reading one pod's answer is that pod's failed scrape.
func (p *Pods) scrapeAll(ctx context.Context, t Target) []scrapeResult {
	results := make([]scrapeResult, len(t.Pods))
	sem := make(chan struct{}, p.o.Concurrency)
	var wg sync.WaitGroup
	for i, pod := range t.Pods {
		wg.Go(func() {
			defer func() {
				if v := recover(); v != nil {
					observe.Recovered(observe.StageObserve, types.NamespacedName{Namespace: t.Namespace, Name: t.Name}, v)
					results[i] = scrapeResult{err: fmt.Errorf("scrape %s: %w", pod.Addr(), errPanic)}
				}
			}()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results[i].err = ctx.Err()
				return
			}
			defer func() { <-sem }()
			results[i].sample, results[i].err = p.scrape(ctx, pod)
		})
	}
	wg.Wait()
	return results
}

// scrape fetches and reduces one pod's metrics.
func (p *Pods) scrape(ctx context.Context, pod Pod) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.Timeout)
	defer cancel()
	u := url.URL{Scheme: "http", Host: pod.Addr(), Path: p.o.Path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return sample{}, err
	}
	// The text format, which expfmt's TextParser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4;q=1,*/*;q=0.1")
	res, err := p.o.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named once, by the caller
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			err = fmt.Errorf("no answer within %s", p.o.Timeout)
		}
		return sample{}, fmt.Errorf("scrape %s: %w", u.Host, err)
	}
	defer res.Body.Close()
	acct, err := p.o.Budget.open(ctx)
	if err != nil {
		return sample{}, fmt.Errorf("scrape %s: %w", u.Host, err)
	}
	defer acct.close() // after the parse: what it made is dropped by then
	at := time.Now()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		return sample{}, fmt.Errorf("scrape %s: status %s", u.Host, res.Status)
	}
	if ct := res.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err == nil && mt != "text/plain" {
			return sample{}, fmt.Errorf("scrape %s: Content-Type %q is not the text format", u.Host, ct)
		}
	}
	// The transport decompresses transparently: the bound is on what the
	// answer inflates to.
	body := &boundedBody{body: res.Body, acct: acct, limit: p.o.MaxBodyBytes}
	s, err := parseSample(body, at)
	if errors.Is(err, errTooLarge) {
		return sample{}, fmt.Errorf("scrape %s: exposition larger than %d bytes", u.Host, p.o.MaxBodyBytes)
	}
	if err != nil {
		return sample{}, fmt.Errorf("scrape %s: %w", u.Host, err)
	}
	return s, nil
}

// record adds the new scrapes to the history, forgets pods that are gone,
// and returns each pod's span for the window.
func (p *Pods) record(t Target, results []scrapeResult, now time.Time) []podSpan {
	p.mu.Lock()
	defer p.mu.Unlock()

	maxAge := max(p.o.MaxAge, 3*t.Interval)
	for k, h := range p.targets {
		if now.Sub(h.lastSeen) > h.maxAge {
			delete(p.targets, k)
		}
	}
	h := p.targets[t.key()]
	if h == nil {
		h = &targetHistory{pods: map[string]*podHistory{}}
		p.targets[t.key()] = h
	}
	h.lastSeen, h.maxAge = now, maxAge

	ready := make(map[string]bool, len(t.Pods))
	for _, pod := range t.Pods {
		ready[pod.Name] = true
	}
	for name := range h.pods {
		if !ready[name] {
			delete(h.pods, name)
		}
	}

	minSpan := max(p.o.MinSpan, t.Interval/2)
	spans := make([]podSpan, len(t.Pods))
	for i, pod := range t.Pods {
		ph := h.pods[pod.Name]
		if ph == nil || ph.uid != pod.UID || ph.addr != pod.Addr() {
			ph = &podHistory{uid: pod.UID, addr: pod.Addr()}
			h.pods[pod.Name] = ph
		}
		spans[i].Name = pod.Name
		if err := results[i].err; err != nil {
			spans[i].Problem = err.Error()
			continue
		}
		ph.add(results[i].sample, p.o.MaxScrapes, minSpan, maxAge)
		spans[i].Scrapes, spans[i].Problem = ph.span(minSpan)
	}
	return spans
}

// add appends s and trims the history. Scrapes older than maxAge go, and
// so do those older than the base of the window ending with s (the newest
// scrape at least minSpan before it): a later window's base is never older.
// Past max, the newest scrapes before s go first, so that when Observe is
// called more often than minSpan the oldest scrapes stay to be a base and
// windows stay between one and about one and a half minSpan long.
func (ph *podHistory) add(s sample, max int, minSpan, maxAge time.Duration) {
	xs := append(ph.scrapes, s)
	drop := 0
	for drop < len(xs)-1 && s.At.Sub(xs[drop].At) > maxAge {
		drop++
	}
	if b := baseIndex(xs, minSpan); b > drop {
		drop = b
	}
	xs = xs[drop:]
	for len(xs) > max {
		xs = slices.Delete(xs, len(xs)-2, len(xs)-1)
	}
	ph.scrapes = slices.Clone(xs)
}

// baseIndex is the index of the newest scrape at least minSpan before the
// last one, or -1.
func baseIndex(xs []sample, minSpan time.Duration) int {
	cur := xs[len(xs)-1]
	for i := len(xs) - 2; i >= 0; i-- {
		if cur.At.Sub(xs[i].At) >= minSpan {
			return i
		}
	}
	return -1
}

// span returns the scrapes from the newest one at least minSpan older than
// the latest, through the latest.
func (ph *podHistory) span(minSpan time.Duration) ([]sample, string) {
	if b := baseIndex(ph.scrapes, minSpan); b >= 0 {
		return slices.Clone(ph.scrapes[b:]), ""
	}
	return nil, problemFirstScrape
}
