package metrics

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// PrometheusAuth is how the operator proves itself to a Prometheus server,
// read from the Secret a TunedService names (spec.tuning.metrics.authSecretRef).
type PrometheusAuth struct {
	// BearerToken is sent as "Authorization: Bearer <token>".
	BearerToken string
	// Username and Password are sent as basic authentication.
	Username, Password string
	// CA is a PEM bundle: the only authorities trusted for https when set.
	CA []byte
}

// key identifies the credentials among cached clients without keeping
// them readable in the key.
func (a *PrometheusAuth) key() string {
	if a == nil {
		return ""
	}
	h := sha256.New()
	for _, part := range [][]byte{[]byte(a.BearerToken), []byte(a.Username), []byte(a.Password), a.CA} {
		fmt.Fprintf(h, "%d:", len(part))
		h.Write(part)
	}
	return string(h.Sum(nil))
}

var errRedirect = errors.New("redirects are not followed")

// promClient is the HTTP client of one Prometheus server and credentials,
// and its transport, whose idle connections are closed when it is dropped.
type promClient struct {
	http      *http.Client
	transport *http.Transport
}

// idleTimeout closes a connection to a Prometheus server idle this long:
// longer than the default tuning interval (30s), so a connection is reused
// from one observation to the next.
const idleTimeout = 90 * time.Second

// newPrometheusClient is the HTTP client of one Prometheus server: it dials
// only what policy allows, never uses a proxy (which would dial for it),
// follows no redirect and adds the credentials.
func newPrometheusClient(policy *EndpointPolicy, auth *PrometheusAuth) (*promClient, error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         policy.DialContext,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     idleTimeout,
	}
	var rt http.RoundTripper = tr
	if auth != nil {
		if len(auth.CA) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(auth.CA) {
				return nil, errors.New("metrics: the Prometheus CA bundle holds no PEM certificate")
			}
			tr.TLSClientConfig.RootCAs = pool
		}
		if auth.BearerToken != "" && auth.Username != "" {
			return nil, errors.New("metrics: Prometheus credentials hold both a bearer token and a username; use one")
		}
		rt = &authTransport{next: tr, auth: *auth}
	}
	return &promClient{transport: tr, http: &http.Client{
		Transport:     rt,
		CheckRedirect: func(*http.Request, []*http.Request) error { return errRedirect },
	}}, nil
}

type authTransport struct {
	next http.RoundTripper
	auth PrometheusAuth
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	switch {
	case t.auth.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+t.auth.BearerToken)
	case t.auth.Username != "" || t.auth.Password != "":
		req.SetBasicAuth(t.auth.Username, t.auth.Password)
	}
	return t.next.RoundTrip(req)
}

// queryFailure is a Prometheus observation that failed after its URL was
// allowed. Its message is one and the same whatever the cause (a refused
// or failed dial, no answer in time, an error answer, a redirect, a bad or
// oversized answer), because status is read by everyone who may read the
// TunedService: it must not tell a scan of the operator's networks which
// addresses answer. The cause is logged at debug level and kept for
// errors.Is.
type queryFailure struct{ cause error }

// errQueryFailed is queryFailure's message.
const errQueryFailed = "metrics: Prometheus gave no usable answer (the operator's log has the details at debug level)"

func (f *queryFailure) Error() string { return errQueryFailed }
func (f *queryFailure) Unwrap() error { return f.cause }
