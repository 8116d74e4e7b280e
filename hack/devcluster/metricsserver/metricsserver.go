// Package metricsserver runs the real metrics-server as a process of the
// dev cluster, registered with the API server's aggregation layer as
// metrics.k8s.io/v1beta1, as a cluster's add-on would be. It scrapes the
// node agent's kubelet API (/metrics/resource), and serves the resource
// metrics API that `kubectl top` and the HPA controller read.
package metricsserver

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"text/template"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pacer-dev/pacer/hack/devcluster/pki"
	"github.com/pacer-dev/pacer/hack/devcluster/proc"
)

// User is the name metrics-server authenticates as: its service
// account's, which its RBAC binds.
const User = "system:serviceaccount:kube-system:metrics-server"

// Groups are User's groups, as a service account token would carry.
var Groups = []string{"system:serviceaccounts", "system:serviceaccounts:kube-system"}

// APIServiceName is the APIService that registers metrics.k8s.io.
const APIServiceName = "v1beta1.metrics.k8s.io"

// Resolution is how often metrics-server scrapes the kubelets (its minimum is 10s).
const Resolution = 15 * time.Second

//go:embed manifests.yaml
var manifests string

// Options configure metrics-server.
type Options struct {
	// Binary is the metrics-server executable.
	Binary string
	// Dir holds its serving certificate and its log.
	Dir string
	// Kubeconfig authenticates it as User.
	Kubeconfig string
	// CA issues its serving certificate (which the APIService trusts) and
	// signed the kubelet API's (which it verifies).
	CA *pki.CA
	// KubeletCAFile is CA's certificate on disk.
	KubeletCAFile string
}

// Server is a running metrics-server.
type Server struct {
	cmd  *exec.Cmd
	done chan struct{}
	// Log is the path of its log.
	Log string
	// Exited is closed when the process ends.
	Exited <-chan struct{}
	// Err is the process's end, valid once Exited is closed.
	Err error
}

// Args are metrics-server's flags.
func Args(o Options, port int, certFile, keyFile string) []string {
	return []string{
		"--kubeconfig=" + o.Kubeconfig,
		// It delegates the authentication (front-proxy request headers,
		// tokens) and authorization of its own clients to the API server.
		"--authentication-kubeconfig=" + o.Kubeconfig,
		"--authorization-kubeconfig=" + o.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--tls-cert-file=" + certFile,
		"--tls-private-key-file=" + keyFile,
		// The kubelet API's certificate is the dev CA's: verified, not skipped.
		"--kubelet-certificate-authority=" + o.KubeletCAFile,
		"--kubelet-preferred-address-types=InternalIP",
		// The node agent's kubelet API is on a free port, not 10250.
		"--kubelet-use-node-status-port",
		"--metric-resolution=" + Resolution.String(),
		"--v=1",
	}
}

// Start starts metrics-server, creates its RBAC, Service, EndpointSlice and
// APIService, and waits until the APIService is Available. On error nothing
// is left running and the APIService is removed (an unavailable aggregated
// API would fail the discovery the garbage collector and namespace
// controller depend on).
func Start(ctx context.Context, admin *rest.Config, o Options) (s *Server, err error) {
	if _, err := os.Stat(o.Binary); err != nil {
		return nil, fmt.Errorf("metrics-server binary: %w (build it with hack/envtest-assets.sh metrics-server)", err)
	}
	c, err := client.New(admin, client.Options{})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	certFile, keyFile, err := o.CA.IssueFiles(o.Dir, "serving", pki.Request{
		CommonName: "metrics-server",
		// The aggregator checks the certificate against the Service's name.
		DNSNames: []string{"metrics-server.kube-system.svc", "localhost"},
		IPs:      []net.IP{net.IPv4(127, 0, 0, 1)},
		Server:   true,
	})
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	objs, err := Objects(port, o.CA.CertPEM())
	if err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(o.Dir, "metrics-server.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.Binary, Args(o, port, certFile, keyFile)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := proc.Start(cmd); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start metrics-server: %w", err)
	}
	done := make(chan struct{})
	s = &Server{cmd: cmd, done: done, Log: logFile.Name(), Exited: done}
	go func() {
		s.Err = cmd.Wait()
		logFile.Close()
		close(done)
	}()
	defer func() {
		if err != nil {
			s.Stop()
			Unregister(context.WithoutCancel(ctx), c)
		}
	}()
	for _, obj := range objs {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("create %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
	return s, waitAvailable(ctx, c, done, s.Log)
}

// Stop stops metrics-server.
func (s *Server) Stop() {
	proc.Stop(s.cmd, s.done, 5*time.Second)
}

// Unregister removes the APIService, so discovery no longer waits on it.
func Unregister(ctx context.Context, c client.Client) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiregistration.k8s.io/v1")
	u.SetKind("APIService")
	u.SetName(APIServiceName)
	_ = c.Delete(ctx, u)
}

// Objects are the objects of manifests.yaml for a metrics-server on port,
// whose serving certificate caPEM signed.
func Objects(port int, caPEM []byte) ([]*unstructured.Unstructured, error) {
	var buf bytes.Buffer
	err := template.Must(template.New("manifests").Parse(manifests)).Execute(&buf, struct {
		Port     int
		CABundle string
	}{port, base64.StdEncoding.EncodeToString(caPEM)})
	if err != nil {
		return nil, err
	}
	docs := utilyaml.NewYAMLReader(bufio.NewReader(&buf))
	var out []*unstructured.Unstructured
	for {
		doc, err := docs.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, err
		}
		js, err := utilyaml.ToJSON(doc)
		if err != nil {
			return nil, err
		}
		if js = bytes.TrimSpace(js); len(js) == 0 || string(js) == "null" {
			continue // a document of comments only
		}
		// UnmarshalJSON keeps integers as int64, as the API machinery expects.
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(js); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
}

// waitAvailable waits for the APIService's Available condition.
func waitAvailable(ctx context.Context, c client.Client, exited <-chan struct{}, log string) error {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiregistration.k8s.io/v1")
	u.SetKind("APIService")
	last := "no status yet"
	for {
		if err := c.Get(ctx, client.ObjectKey{Name: APIServiceName}, u); err == nil {
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, x := range conds {
				cond, _ := x.(map[string]any)
				if cond["type"] == "Available" {
					if cond["status"] == "True" {
						return nil
					}
					last = fmt.Sprintf("%v: %v", cond["reason"], cond["message"])
				}
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("metrics-server exited (see %s)", log)
		case <-ctx.Done():
			return fmt.Errorf("APIService %s not available (%s; see %s)", APIServiceName, last, log)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// freePort is a loopback port free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
