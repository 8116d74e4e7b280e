package scenario

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Endpoints keeps the ready addresses of a Service's port from its
// EndpointSlices, refreshed often, and spreads requests over them as
// kube-proxy does (round robin here).
type Endpoints struct {
	c                  client.Client
	namespace, service string
	port               string

	mu    sync.Mutex
	addrs []string
	next  atomic.Uint64
}

// NewEndpoints follows service's port (by name) until ctx ends.
func NewEndpoints(ctx context.Context, c client.Client, namespace, service, port string) *Endpoints {
	e := &Endpoints{c: c, namespace: namespace, service: service, port: port}
	e.refresh(ctx)
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				e.refresh(ctx)
			}
		}
	}()
	return e
}

func (e *Endpoints) refresh(ctx context.Context) {
	var list discoveryv1.EndpointSliceList
	if err := e.c.List(ctx, &list, client.InNamespace(e.namespace), client.MatchingLabels{discoveryv1.LabelServiceName: e.service}); err != nil {
		return
	}
	// As kube-proxy: ready endpoints; when there are none, the serving
	// ones that are terminating (they still drain in their preStop).
	var ready, serving []string
	for _, s := range list.Items {
		var port int32
		for _, p := range s.Ports {
			if p.Name != nil && *p.Name == e.port && p.Port != nil {
				port = *p.Port
			}
		}
		if port == 0 {
			continue
		}
		for _, ep := range s.Endpoints {
			c := ep.Conditions
			for _, a := range ep.Addresses {
				addr := net.JoinHostPort(a, strconv.Itoa(int(port)))
				switch {
				case c.Ready != nil && *c.Ready:
					ready = append(ready, addr)
				case c.Serving != nil && *c.Serving && c.Terminating != nil && *c.Terminating:
					serving = append(serving, addr)
				}
			}
		}
	}
	addrs := ready
	if len(addrs) == 0 {
		addrs = serving
	}
	slices.Sort(addrs)
	e.mu.Lock()
	e.addrs = addrs
	e.mu.Unlock()
}

// Addrs are the current ready addresses.
func (e *Endpoints) Addrs() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.addrs)
}

// Pick returns the next address, or "" when none is ready.
func (e *Endpoints) Pick() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.addrs) == 0 {
		return ""
	}
	return e.addrs[int(e.next.Add(1)%uint64(len(e.addrs)))]
}

// Phase is a stretch of offered load: a constant rate, or a linear ramp.
type Phase struct {
	Name     string
	Duration time.Duration
	// RPS is the rate (at the start, for a ramp), in requests per second.
	RPS float64
	// ToRPS, when set, makes the phase a linear ramp from RPS to it.
	ToRPS *float64
	// WriteShare, when set, is the phase's share of creates (else the Load's).
	WriteShare *float64
	// PerCapacity: RPS and ToRPS are multiples of the measured capacity
	// of a starting pod, to be turned into rates by Sized before a Load
	// runs the phase.
	PerCapacity bool
}

// Due is how many requests the phase has sent after elapsed: the integral
// of its rate.
func (p Phase) Due(elapsed time.Duration) int {
	t := min(elapsed, p.Duration).Seconds()
	n := p.RPS * t
	if p.ToRPS != nil && p.Duration > 0 {
		n += (*p.ToRPS - p.RPS) * t * t / (2 * p.Duration.Seconds())
	}
	return int(n)
}

// EndRPS is the rate at the end of the phase.
func (p Phase) EndRPS() float64 {
	if p.ToRPS != nil {
		return *p.ToRPS
	}
	return p.RPS
}

// String describes the phase: "step 1m12s at 300 req/s", "climb 1m at
// 100→400 req/s" or, before Sized, "step 1m12s at 1.5 × capacity".
func (p Phase) String() string {
	r := strconv.FormatFloat(p.RPS, 'f', -1, 64)
	if p.ToRPS != nil {
		r += "→" + strconv.FormatFloat(*p.ToRPS, 'f', -1, 64)
	}
	unit := "req/s"
	if p.PerCapacity {
		unit = "× capacity"
	}
	s := fmt.Sprintf("%s %s at %s %s", p.Name, p.Duration, r, unit)
	if p.WriteShare != nil {
		s += fmt.Sprintf(" (%.0f%% creates)", *p.WriteShare*100)
	}
	return s
}

// Bin is what happened in one second of load.
type Bin struct {
	Offered, OK, R429, R503, R5xx, Other, Net, NoEndpoint, Dropped int
	Latencies                                                      []time.Duration
}

// Errors are the failed requests of a bin (everything but 2xx and 404).
func (b *Bin) Errors() int {
	return b.R429 + b.R503 + b.R5xx + b.Other + b.Net + b.NoEndpoint + b.Dropped
}

// Load sends an open-loop mix of reads and writes at each phase's rate.
type Load struct {
	Endpoints *Endpoints
	// IDs are user ids to read; reads pick them by a Zipf law (ReadSkew).
	IDs []int64
	// WriteShare is the share of requests that create a user.
	WriteShare float64
	// MaxInFlight bounds the client's concurrency; requests over it are dropped and counted.
	MaxInFlight int
	// Tag makes created emails unique per run.
	Tag string
	// Seed makes the sequence of requests (read or create, which user)
	// the same in every run with the same phases; 0 picks one at random.
	Seed uint64

	start   time.Time
	mu      sync.Mutex
	bins    []Bin
	phase   atomic.Value // string
	client  *http.Client
	created atomic.Int64
}

// Run sends load through the phases and returns when they are over or ctx ends.
func (l *Load) Run(ctx context.Context, phases []Phase) {
	// One generator, drawn from in order on this goroutine: the same seed
	// gives the same requests whatever the timing.
	requests := l.begin()
	defer l.client.CloseIdleConnections()
	sem := make(chan struct{}, l.MaxInFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, ph := range phases {
		l.phase.Store(ph.Name)
		share := l.WriteShare
		if ph.WriteShare != nil {
			share = *ph.WriteShare
		}
		phaseStart := time.Now()
		sent := 0
		tick := time.NewTicker(5 * time.Millisecond)
		for time.Since(phaseStart) < ph.Duration {
			select {
			case <-ctx.Done():
				tick.Stop()
				return
			case <-tick.C:
			}
			due := ph.Due(time.Since(phaseStart)) - sent
			for range due {
				sent++
				req := requests.next(share)
				select {
				case sem <- struct{}{}:
					wg.Add(1)
					go func() {
						defer wg.Done()
						defer func() { <-sem }()
						l.one(ctx, req)
					}()
				default:
					l.record(time.Now(), func(b *Bin) { b.Offered++; b.Dropped++ })
				}
			}
		}
		tick.Stop()
	}
}

// RunClosed sends the mix closed loop: clients requests at once, each
// client sending its next as soon as its answer came, for d or until ctx
// ends. The order of requests depends on timing; the mix does not.
func (l *Load) RunClosed(ctx context.Context, clients int, d time.Duration) {
	requests := l.begin()
	defer l.client.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	l.phase.Store("closed")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				mu.Lock()
				r := requests.next(l.WriteShare)
				mu.Unlock()
				l.one(ctx, r)
			}
		})
	}
	wg.Wait()
}

// begin makes the client, marks the start and returns the request mix
// of the Load's seed (a random one when it is 0).
func (l *Load) begin() *mix {
	l.client = &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			MaxIdleConnsPerHost: l.MaxInFlight, MaxConnsPerHost: l.MaxInFlight,
			IdleConnTimeout: 10 * time.Second, DisableCompression: true,
		},
	}
	l.mu.Lock()
	l.start = time.Now()
	l.mu.Unlock()
	seed := l.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	return newMix(seed, l.IDs)
}

// Phase is the name of the running phase.
func (l *Load) Phase() string {
	s, _ := l.phase.Load().(string)
	return s
}

// request is one request of the mix: a create, or a read of user id.
type request struct {
	create bool
	id     int64
}

// ReadSkew is the Zipf exponent of the reads over the seeded users: a few
// hot users get most reads, and the long tail misses a cache of the
// demo's 1,000 entries, as reads of real users do (about 85% of the reads
// fall on the 1,000 most read of 5,000 users at 1.1; the LRU and its TTL
// keep fewer).
const ReadSkew = 1.1

// mix draws a seeded sequence of requests: a create with probability
// writeShare, else a read of a user picked by a Zipf law over ids.
type mix struct {
	rng  *rand.Rand
	zipf *rand.Zipf
	ids  []int64
}

func newMix(seed uint64, ids []int64) *mix {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	m := &mix{rng: rng, ids: ids}
	if len(ids) > 1 {
		m.zipf = rand.NewZipf(rng, ReadSkew, 1, uint64(len(ids)-1))
	}
	return m
}

func (m *mix) next(writeShare float64) request {
	if m.rng.Float64() < writeShare {
		return request{create: true}
	}
	switch {
	case m.zipf != nil:
		return request{id: m.ids[m.zipf.Uint64()]}
	case len(m.ids) == 1:
		return request{id: m.ids[0]}
	}
	return request{id: 1}
}

func (l *Load) one(ctx context.Context, r request) {
	start := time.Now()
	addr := l.Endpoints.Pick()
	if addr == "" {
		l.record(start, func(b *Bin) { b.Offered++; b.NoEndpoint++ })
		return
	}
	var req *http.Request
	var err error
	if r.create {
		n := l.created.Add(1)
		body := fmt.Sprintf(`{"name":"Load %d","email":"load-%s-%d@example.com"}`, n, l.Tag, n)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/users", bytes.NewBufferString(body))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/users/"+strconv.FormatInt(r.id, 10), nil)
	}
	if err != nil {
		return
	}
	res, err := l.client.Do(req)
	lat := time.Since(start)
	code := 0
	if err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		code = res.StatusCode
	} else if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
		return // the run ended; not the server's doing
	}
	l.record(start, func(b *Bin) {
		b.Offered++
		switch {
		case code >= 200 && code < 300 || code == http.StatusNotFound:
			b.OK++
			b.Latencies = append(b.Latencies, lat)
		case code == http.StatusTooManyRequests:
			b.R429++
		case code == http.StatusServiceUnavailable:
			b.R503++
		case code >= 500:
			b.R5xx++
		case code == 0:
			b.Net++
		default:
			b.Other++
		}
	})
}

func (l *Load) record(at time.Time, f func(*Bin)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := max(int(at.Sub(l.start)/time.Second), 0)
	for len(l.bins) <= i {
		l.bins = append(l.bins, Bin{})
	}
	f(&l.bins[i])
}

// Bins returns a copy of the per-second bins so far.
func (l *Load) Bins() []Bin {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Bin, len(l.bins))
	for i, b := range l.bins {
		out[i] = b
		out[i].Latencies = slices.Clone(b.Latencies)
	}
	return out
}

// Start is when the load began.
func (l *Load) Start() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start
}

// Window merges bins [from, to).
func Window(bins []Bin, from, to int) Bin {
	var w Bin
	for i := max(from, 0); i < min(to, len(bins)); i++ {
		b := bins[i]
		w.Offered += b.Offered
		w.OK += b.OK
		w.R429 += b.R429
		w.R503 += b.R503
		w.R5xx += b.R5xx
		w.Other += b.Other
		w.Net += b.Net
		w.NoEndpoint += b.NoEndpoint
		w.Dropped += b.Dropped
		w.Latencies = append(w.Latencies, b.Latencies...)
	}
	return w
}

// Quantile of the bin's latencies (0 when empty).
func (b *Bin) Quantile(q float64) time.Duration {
	if len(b.Latencies) == 0 {
		return 0
	}
	s := slices.Clone(b.Latencies)
	slices.Sort(s)
	return s[min(int(q*float64(len(s))), len(s)-1)]
}
