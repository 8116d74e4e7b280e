package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func parse(t *testing.T, certPEM []byte) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	if b == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestServingCertificateVerifiesForItsNamesOnly(t *testing.T) {
	ca, err := NewCA("test-ca")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(Request{CommonName: "kubelet", IPs: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"node-a"}, Server: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	c := parse(t, certPEM)
	for _, name := range []string{"127.0.0.1", "node-a"} {
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify as %s: %v", name, err)
		}
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, DNSName: "node-b"}); err == nil {
		t.Error("verified for a name it does not carry")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
		t.Error("a serving certificate verified as a client certificate")
	}
	other, _ := NewCA("other-ca")
	otherPool := x509.NewCertPool()
	otherPool.AddCert(other.Cert)
	if _, err := c.Verify(x509.VerifyOptions{Roots: otherPool, DNSName: "node-a"}); err == nil {
		t.Error("verified against a CA that did not sign it")
	}
}

func TestClientCertificateCarriesUserAndGroups(t *testing.T) {
	ca, err := NewCA("front-proxy-ca")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := ca.IssueFiles(dir, "front-proxy-client", Request{CommonName: "front-proxy-client", Organization: []string{"g1"}, Client: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode: %v %v, want 0600", fi.Mode(), err)
	}
	certPEM, _ := os.ReadFile(certFile)
	c := parse(t, certPEM)
	if c.Subject.CommonName != "front-proxy-client" || !slices.Equal(c.Subject.Organization, []string{"g1"}) {
		t.Errorf("subject %v", c.Subject)
	}
	pool := x509.NewCertPool()
	caFile, err := ca.WriteCert(dir, "front-proxy-ca")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(caFile)
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify client: %v", err)
	}
	if filepath.Dir(certFile) != dir {
		t.Errorf("written to %s", certFile)
	}
}

func TestIssueRefusesACertificateForNothing(t *testing.T) {
	ca, err := NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := ca.Issue(Request{CommonName: "x"}); err == nil {
		t.Error("no error for a certificate neither client nor server")
	}
}
