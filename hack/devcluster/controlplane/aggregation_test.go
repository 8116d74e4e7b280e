package controlplane

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"
)

func TestFrontProxyClientIsTheAllowedNameSignedByTheRequestHeaderCA(t *testing.T) {
	fp, err := newFrontProxy(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	flags := aggregationFlags(fp)
	caPEM, err := os.ReadFile(flags["requestheader-client-ca-file"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("no CA in the requestheader CA file")
	}
	certPEM, err := os.ReadFile(flags["proxy-client-cert-file"])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the proxy client certificate does not verify against the requestheader CA: %v", err)
	}
	if cert.Subject.CommonName != flags["requestheader-allowed-names"] {
		t.Errorf("proxy client is %q, allowed names %q", cert.Subject.CommonName, flags["requestheader-allowed-names"])
	}
	if _, err := os.Stat(flags["proxy-client-key-file"]); err != nil {
		t.Error(err)
	}
	if flags["enable-aggregator-routing"] != "true" {
		t.Error("aggregator routing off: the aggregator would dial a cluster IP nothing routes")
	}
	for _, k := range []string{"requestheader-username-headers", "requestheader-group-headers", "requestheader-extra-headers-prefix"} {
		if flags[k] == "" {
			t.Errorf("%s not set", k)
		}
	}
}
