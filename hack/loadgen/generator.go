package main

import (
	"context"
	"io"
	"net/http"
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
	rss      string // of the server process, when known
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
	var total, errs atomic.Int64
	samples := make([][]time.Duration, conns)
	deadline := time.Now().Add(warm + d)
	var wg sync.WaitGroup
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 4096)
			for i := 0; i < maxPerConn && time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				req, err := build(c, i)
				if err != nil {
					errs.Add(1)
					continue
				}
				start := time.Now()
				res, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != wantStatus {
						err = io.ErrUnexpectedEOF // any wrong status is an error
					}
				}
				if !measuring.Load() {
					continue
				}
				total.Add(1)
				if err != nil {
					errs.Add(1)
					continue
				}
				if len(lat) < maxSamplesPerConn {
					lat = append(lat, time.Since(start))
				}
			}
			samples[c] = lat
		}()
	}
	time.Sleep(warm)
	measuring.Store(true)
	start := time.Now()
	wg.Wait()
	elapsed := time.Since(start)

	var all []time.Duration
	for _, s := range samples {
		all = append(all, s...)
	}
	slices.Sort(all)
	pct := func(p float64) time.Duration {
		if len(all) == 0 {
			return 0
		}
		return all[min(len(all)-1, int(float64(len(all))*p))]
	}
	return result{Requests: total.Load(), Errors: errs.Load(), Duration: elapsed, P50: pct(0.50), P99: pct(0.99)}
}
