package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pacer-dev/pacer/service/telemetry"
)

// routeMetrics holds a route's series, resolved once at start so a request
// does no label lookups.
type routeMetrics struct {
	requests [6]prometheus.Counter  // by status class 1..5
	duration [6]prometheus.Observer // by status class 1..5
}

var statusClasses = [6]string{"", "1xx", "2xx", "3xx", "4xx", "5xx"}

func newRouteMetrics(x *telemetry.Metrics, pattern string) *routeMetrics {
	method, path, _ := strings.Cut(pattern, " ")
	rm := &routeMetrics{}
	for class := 1; class <= 5; class++ {
		rm.requests[class] = x.Requests.WithLabelValues(path, method, statusClasses[class])
		rm.duration[class] = x.RequestDuration.WithLabelValues(path, method, statusClasses[class])
	}
	return rm
}

// unmatchedRoute labels requests no route matched.
const unmatchedRoute = "unmatched"

func (s *server) observe(route *routeMetrics, method string, status int, elapsed time.Duration) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 5
	}
	if route != nil {
		route.requests[class].Inc()
		route.duration[class].Observe(elapsed.Seconds())
		return
	}
	method = knownMethod(method)
	s.Metrics.Requests.WithLabelValues(unmatchedRoute, method, statusClasses[class]).Inc()
	s.Metrics.RequestDuration.WithLabelValues(unmatchedRoute, method, statusClasses[class]).Observe(elapsed.Seconds())
}

// knownMethod bounds the method label: clients can send any token.
func knownMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}
