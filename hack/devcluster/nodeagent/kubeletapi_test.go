package nodeagent

import (
	"context"
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pacer-dev/pacer/hack/devcluster/cgroups"
	"github.com/pacer-dev/pacer/hack/devcluster/internal/kubetest"
	"github.com/pacer-dev/pacer/hack/devcluster/pki"
)

// The kubelet API answers /metrics/resource only to a client the API
// server authenticates (client certificate or token) and allows get
// nodes/metrics on this node, as a kubelet in webhook mode does.
func TestKubeletAPIChecksClientsAsAKubeletDoes(t *testing.T) {
	env := kubetest.Start(t)
	cfg := env.Config
	ctx := context.Background()
	admin := kubernetes.NewForConfigOrDie(cfg)

	// The scraper's role, bound to a user (client certificate) and a
	// service account (token); "other" has no role.
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(admin.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
		ObjectMeta: metav1.ObjectMeta{Name: "scrape"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"nodes/metrics"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}))
	must(admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "scrape"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "scrape"},
		Subjects: []rbacv1.Subject{
			{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: "scraper"},
			{Kind: rbacv1.ServiceAccountKind, Name: "scraper", Namespace: "default"},
		},
	}, metav1.CreateOptions{}))
	must(admin.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "scraper"}}, metav1.CreateOptions{}))
	tok, err := admin.CoreV1().ServiceAccounts("default").CreateToken(ctx, "scraper", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	auth, err := kubeletAuth(admin, "node-a", filepath.Join(env.ControlPlane.GetAPIServer().CertDir, "client-cert-auth-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	families := func(context.Context) ([]*dto.MetricFamily, error) {
		return resourceMetrics(time.Now(), cgroups.Usage{CPU: time.Second}, []podUsage{
			{namespace: "default", name: "p", usage: cgroups.Usage{CPU: 3 * time.Second, WorkingSet: 1 << 20}},
		}), nil
	}
	srv := httptest.NewUnstartedServer(kubeletHandler(auth, families))
	srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert}
	srv.StartTLS()
	defer srv.Close()

	get := func(t *testing.T, cert *tls.Certificate, token string) (int, string) {
		t.Helper()
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/metrics/resource", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	userCert := func(t *testing.T, name string) *tls.Certificate {
		t.Helper()
		u, err := env.AddUser(envtest.User{Name: name}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := u.Config()
		cert, err := tls.X509KeyPair(c.CertData, c.KeyData)
		if err != nil {
			t.Fatal(err)
		}
		return &cert
	}
	const want = `pod_cpu_usage_seconds_total{namespace="default",pod="p"} 3`

	if code, _ := get(t, nil, ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous: HTTP %d, want 401", code)
	}
	if code, _ := get(t, nil, "not-a-token"); code != http.StatusUnauthorized {
		t.Errorf("bad token: HTTP %d, want 401", code)
	}
	if code, _ := get(t, userCert(t, "other"), ""); code != http.StatusForbidden {
		t.Errorf("a user without nodes/metrics: HTTP %d, want 403", code)
	}
	if code, body := get(t, userCert(t, "scraper"), ""); code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("client certificate of an allowed user: HTTP %d, body:\n%s", code, body)
	}
	if code, body := get(t, nil, tok.Status.Token); code != http.StatusOK || !strings.Contains(body, want) {
		t.Errorf("token of an allowed service account: HTTP %d, body:\n%s", code, body)
	}
	// The allowed user's name in a certificate from another CA is nobody.
	ca, err := pki.NewCA("foreign")
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := ca.Issue(pki.Request{CommonName: "scraper", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	forged, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, &forged, ""); code != http.StatusUnauthorized {
		t.Errorf("a certificate from a foreign CA: HTTP %d, want 401", code)
	}
}
