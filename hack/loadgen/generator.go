package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// request builds the i-th request of connection conn.
type request func(conn, i int) (*http.Request, error)

// result summarises one scenario.
type result struct {
	Requests int64
	Errors   int64
	Duration time.Duration
	P50, P99 time.Duration
	// Hit and Miss split the answers by their X-Cache header (pacer-api
	// sets it on GET /v1/users/{id}); answers without one are in neither.
	Hit, Miss split
	rss       string // of the server process, when known
	// cpu is the server's CPU time over cpuRequests requests.
	cpu, pgCPU                time.Duration
	cpuRequests, warmRequests int64
	lat                       []time.Duration // sorted samples, for merging rounds
}

// split is the latency of the answers of one X-Cache kind.
type split struct {
	P99 time.Duration
	lat []time.Duration // sorted
}

func newSplit(lat []time.Duration) split {
	slices.Sort(lat)
	return split{P99: percentile(lat, 0.99), lat: lat}
}

func (s split) Count() int { return len(s.lat) }

func (s split) merge(o split) split {
	return newSplit(append(append(make([]time.Duration, 0, len(s.lat)+len(o.lat)), s.lat...), o.lat...))
}

// merge adds another round of the same scenario.
func (r result) merge(o result) result {
	m := result{Requests: r.Requests + o.Requests, Errors: r.Errors + o.Errors, Duration: r.Duration + o.Duration, rss: o.rss,
		cpu: r.cpu + o.cpu, pgCPU: r.pgCPU + o.pgCPU, cpuRequests: r.cpuRequests + o.cpuRequests}
	m.lat = append(append(make([]time.Duration, 0, len(r.lat)+len(o.lat)), r.lat...), o.lat...)
	slices.Sort(m.lat)
	m.P50, m.P99 = percentile(m.lat, 0.50), percentile(m.lat, 0.99)
	m.Hit, m.Miss = r.Hit.merge(o.Hit), r.Miss.merge(o.Miss)
	return m
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}

func (r result) RPS() float64 { return float64(r.Requests) / r.Duration.Seconds() }

// maxSamplesPerConn bounds memory: latencies past it are not kept (the
// count still is).
const maxSamplesPerConn = 1 << 18

// closedLoop runs conns workers, each sending its next request as soon as
// the previous answered, over keep-alive connections, for d (after a warm-up
// of warm that is not measured). Every loop is bounded by time and count.
func closedLoop(ctx context.Context, conns int, warm, d time.Duration, maxPerConn int, build request, wantStatus int) result {
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}

	var measuring atomic.Bool
	measuring.Store(warm <= 0) // without a warm-up, every request counts
	var total, errs, warmCount atomic.Int64
	var whyMu sync.Mutex
	why := map[string]int{} // what each error was: a status or a transport error
	samples := make([][]time.Duration, conns)
	hitSamples, missSamples := make([][]time.Duration, conns), make([][]time.Duration, conns)
	deadline := time.Now().Add(warm + d)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			var hits, misses []time.Duration
			for i := 0; i < maxPerConn && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				req, err := build(c, i)
				if err != nil {
					errs.Add(1)
					continue
				}
				start := time.Now()
				res, err := client.Do(req)
				cacheKind := ""
				if err == nil {
					cacheKind = res.Header.Get("X-Cache")
					if res.StatusCode != wantStatus {
						// Any wrong status is an error; its code says which.
						err = fmt.Errorf("status %d %s", res.StatusCode, errorCode(res.Body))
					}
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
				}
				if !measuring.Load() {
					warmCount.Add(1)
					continue
				}
				total.Add(1)
				if err != nil {
					errs.Add(1)
					whyMu.Lock()
					if k := err.Error(); why[k] > 0 || len(why) < 20 { // bounded: a few kinds say why
						why[k]++
					} else {
						why["other"]++
					}
					whyMu.Unlock()
					continue
				}
				if len(lat) < maxSamplesPerConn {
					took := time.Since(start)
					lat = append(lat, took)
					switch cacheKind {
					case "hit":
						hits = append(hits, took)
					case "miss":
						misses = append(misses, took)
					}
				}
			}
			samples[c], hitSamples[c], missSamples[c] = lat, hits, misses
		}()
	}
	time.Sleep(warm)
	measuring.Store(true)
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)

	all, hits, misses := slices.Concat(samples...), slices.Concat(hitSamples...), slices.Concat(missSamples...)
	slices.Sort(all)
	for k, n := range why {
		fmt.Fprintf(os.Stderr, "  %d errors: %s\n", n, k)
	}
	return result{Requests: total.Load(), Errors: errs.Load(), Duration: elapsed, warmRequests: warmCount.Load(),
		P50: percentile(all, 0.50), P99: percentile(all, 0.99), lat: all, Hit: newSplit(hits), Miss: newSplit(misses)}
}

// errorCode reads the code of a pacer-api error body ({"error":{"code":...}}),
// or "" if the body is not one.
func errorCode(body io.Reader) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if json.NewDecoder(io.LimitReader(body, 4096)).Decode(&e) != nil {
		return ""
	}
	return e.Error.Code
}
