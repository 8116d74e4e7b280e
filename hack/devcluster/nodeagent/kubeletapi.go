package nodeagent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/virtual-kubelet/virtual-kubelet/node/api"
	"github.com/virtual-kubelet/virtual-kubelet/node/nodeutil"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// KubeletAPI configures the kubelet's HTTPS API the agent serves on the
// Node's address, at the port the Node advertises in
// status.daemonEndpoints.kubeletEndpoint. Only /metrics/resource is there:
// the endpoint metrics-server scrapes.
type KubeletAPI struct {
	// CertFile and KeyFile are the serving certificate, valid for the
	// Node's address.
	CertFile, KeyFile string
	// ClientCAFile is the CA of the cluster's client certificates.
	ClientCAFile string
}

// kubeletAuth checks requests as a kubelet with webhook authentication and
// authorization does: the client is the user of a client certificate signed
// by the cluster's client CA, or of a bearer token the API server accepts
// (TokenReview); anonymous requests get 401. The user must then be allowed
// the request's verb on the Node's subresource (SubjectAccessReview; GET
// /metrics/resource is "get nodes/metrics", which metrics-server's
// ClusterRole grants), or gets 403.
func kubeletAuth(client kubernetes.Interface, nodeName, clientCAFile string) (nodeutil.Auth, error) {
	caPEM, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, err
	}
	ca, err := dynamiccertificates.NewStaticCAContent("client-ca", caPEM)
	if err != nil {
		return nil, fmt.Errorf("client CA %s: %w", clientCAFile, err)
	}
	return nodeutil.WebhookAuth(client, nodeName, func(c *nodeutil.WebhookAuthConfig) error {
		c.AuthnConfig.ClientCertificateCAContentProvider = ca
		return nil
	})
}

// kubeletHandler routes the kubelet API's paths, behind auth.
func kubeletHandler(auth nodeutil.Auth, metrics api.PodMetricsResourceHandlerFunc) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics/resource", api.HandlePodMetricsResource(metrics))
	return nodeutil.WithAuth(auth, mux)
}

// listenKubeletAPI takes a free port on host for the kubelet API.
func listenKubeletAPI(host string) (net.Listener, int32, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, 0, fmt.Errorf("kubelet API: %w", err)
	}
	return l, int32(l.Addr().(*net.TCPAddr).Port), nil
}

// serveKubeletAPI serves the kubelet API on l until ctx ends.
func (a *Agent) serveKubeletAPI(ctx context.Context, l net.Listener, k *KubeletAPI) error {
	cert, err := tls.LoadX509KeyPair(k.CertFile, k.KeyFile)
	if err != nil {
		return fmt.Errorf("kubelet API serving certificate: %w", err)
	}
	auth, err := kubeletAuth(a.client, a.opts.NodeName, k.ClientCAFile)
	if err != nil {
		return fmt.Errorf("kubelet API auth: %w", err)
	}
	srv := &http.Server{
		Handler: kubeletHandler(auth, a.MetricsResource),
		TLSConfig: &tls.Config{
			Certificates: []tls.Certificate{cert},
			MinVersion:   tls.VersionTLS12,
			// Asked for, not required: the authenticator verifies it against
			// the client CA, and a client may use a bearer token instead.
			ClientAuth: tls.RequestClientCert,
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.ServeTLS(l, "", ""); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
