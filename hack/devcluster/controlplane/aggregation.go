package controlplane

import (
	"os"
	"path/filepath"

	"github.com/pacer-dev/pacer/hack/devcluster/pki"
)

// frontProxyUser is the name in the API server's front-proxy client
// certificate, the one an aggregated API server (metrics-server) accepts
// request headers from.
const frontProxyUser = "front-proxy-client"

// frontProxy is the aggregation layer's PKI: the CA an aggregated API
// server trusts for request headers, and the client certificate the API
// server proxies with.
type frontProxy struct {
	caFile, certFile, keyFile string
}

// newFrontProxy writes a fresh front-proxy CA and client certificate into dir.
func newFrontProxy(dir string) (frontProxy, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return frontProxy{}, err
	}
	ca, err := pki.NewCA("pacer-dev-front-proxy-ca")
	if err != nil {
		return frontProxy{}, err
	}
	fp := frontProxy{}
	if fp.caFile, err = ca.WriteCert(dir, "front-proxy-ca"); err != nil {
		return fp, err
	}
	fp.certFile, fp.keyFile, err = ca.IssueFiles(dir, "front-proxy-client", pki.Request{CommonName: frontProxyUser, Client: true})
	return fp, err
}

// aggregationFlags are the kube-apiserver flags of the aggregation layer,
// as kubeadm sets them. Routing to the endpoint rather than the Service's
// cluster IP: nothing here routes cluster IPs (no kube-proxy), and the
// endpoints of an aggregated API server are written as loopback addresses
// in an FQDN EndpointSlice, which the aggregator reads (see package endpoints).
func aggregationFlags(fp frontProxy) map[string]string {
	return map[string]string{
		"requestheader-client-ca-file":       fp.caFile,
		"requestheader-allowed-names":        frontProxyUser,
		"requestheader-username-headers":     "X-Remote-User",
		"requestheader-group-headers":        "X-Remote-Group",
		"requestheader-extra-headers-prefix": "X-Remote-Extra-",
		"proxy-client-cert-file":             fp.certFile,
		"proxy-client-key-file":              fp.keyFile,
		"enable-aggregator-routing":          "true",
	}
}

// ClientCAFile is the CA that signs the cluster's users' client
// certificates (envtest's; the API server's --client-ca-file). A kubelet
// API authenticates clients against it.
func (cp *ControlPlane) ClientCAFile() string {
	return filepath.Join(cp.certDir, "client-cert-auth-ca.crt")
}
