package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
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

// describe says what went wrong with a query in terms fit for status,
// which everyone who may read the TunedService sees: never a dial error,
// an address or a body from the server.
func describe(err error) string {
	var apiErr *promv1.Error
	var netErr net.Error
	switch {
	case errors.Is(err, ErrNotAllowed):
		return ErrNotAllowed.Error()
	case errors.Is(err, ErrBudget):
		return ErrBudget.Error()
	case errors.Is(err, errTooLarge):
		return "Prometheus answered more than the query can return"
	case errors.Is(err, errRedirect):
		return "Prometheus answered with a redirect, which is not followed"
	case errors.Is(err, context.DeadlineExceeded):
		return "Prometheus did not answer in time"
	case errors.Is(err, context.Canceled):
		return "the query was canceled"
	case errors.As(err, &apiErr):
		return fmt.Sprintf("Prometheus answered an error (%s)", apiErr.Type)
	case errors.As(err, &netErr):
		return "could not reach Prometheus"
	}
	return "the query failed"
}
