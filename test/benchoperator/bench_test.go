// Package benchoperator measures the manager at scale: the real manager
// binary against a real kube-apiserver and etcd (envtest), with 300
// TunedServices. Run it with `make bench-operator`.
package benchoperator

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	promdto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

const (
	tunedServices = 300
	// syncPeriod makes the manager re-run every reconcile during the steady
	// window, so "no writes" is measured under work, not idleness.
	syncPeriod   = 20 * time.Second
	steadyWindow = 60 * time.Second
)

// BenchmarkOperatorAt300 reports: seconds until all 300 Deployments exist,
// reconciles per second while creating, API writes per minute in steady
// state (target 0), and the manager's peak RSS (target < 128 MiB).
func BenchmarkOperatorAt300(b *testing.B) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		b.Fatal("KUBEBUILDER_ASSETS is not set; run `make bench-operator`")
	}
	for range b.N {
		runOnce(b)
	}
}

func runOnce(b *testing.B) {
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(pacerv1.AddToScheme(scheme))

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join("..", "..", "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
	}
	// envtest's default Service range has room for 254 Services.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	cfg, err := env.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	manager := startManager(b, env, cfg)
	defer manager.stop()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: "db"},
		StringData: map[string]string{"url": "postgres://bench@db:5432/bench"}}
	for _, o := range []client.Object{ns, secret} {
		if err := c.Create(ctx, o); err != nil {
			b.Fatal(err)
		}
	}

	reconcilesBefore := manager.reconciles(b)
	start := time.Now()
	for i := range tunedServices {
		ts := &pacerv1.TunedService{
			ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%03d", i)},
			Spec: pacerv1.TunedServiceSpec{
				Database: pacerv1.DatabaseSpec{URLSecretRef: pacerv1.SecretKeyRef{Name: "db", Key: "url"}},
			},
		}
		if err := c.Create(ctx, ts); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list appsv1.DeploymentList
		if err := c.List(ctx, &list, client.InNamespace("bench")); err != nil {
			b.Fatal(err)
		}
		if len(list.Items) == tunedServices {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d Deployments after 5 minutes", len(list.Items), tunedServices)
		}
		time.Sleep(100 * time.Millisecond)
	}
	toAllDeployments := time.Since(start)
	// Let status writes and events from the creation wave finish.
	time.Sleep(10 * time.Second)
	createReconciles := manager.reconciles(b) - reconcilesBefore
	createSeconds := time.Since(start).Seconds()

	writesBefore := apiWrites(b, cfg)
	steadyBefore := manager.reconciles(b)
	time.Sleep(steadyWindow)
	steadyWrites := apiWrites(b, cfg) - writesBefore
	steadyReconciles := manager.reconciles(b) - steadyBefore
	rss, peak := manager.memory(b)

	b.ReportMetric(toAllDeployments.Seconds(), "s-to-300-deployments")
	b.ReportMetric(createReconciles/createSeconds, "reconciles/s")
	b.ReportMetric(steadyWrites/steadyWindow.Minutes(), "steady-writes/min")
	b.ReportMetric(steadyReconciles/steadyWindow.Seconds(), "steady-reconciles/s")
	b.ReportMetric(peak/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(rss/(1<<20), "RSS-MiB")
	b.Logf("\n| figure | value | target |\n|---|---|---|\n"+
		"| time until all %d Deployments exist | %.1f s | |\n"+
		"| reconciles per second while creating | %.1f | |\n"+
		"| API writes per minute in steady state (resync every %s) | %.1f | 0 |\n"+
		"| reconciles per second in steady state | %.1f | |\n"+
		"| manager RSS at the end / peak | %.0f / %.0f MiB | < 128 MiB |",
		tunedServices, toAllDeployments.Seconds(), createReconciles/createSeconds, syncPeriod,
		steadyWrites/steadyWindow.Minutes(), steadyReconciles/steadyWindow.Seconds(), rss/(1<<20), peak/(1<<20))
}

// managerProcess is the real manager binary, run as an admin user.
type managerProcess struct {
	cmd         *exec.Cmd
	metricsAddr string
}

func startManager(b *testing.B, env *envtest.Environment, cfg *rest.Config) *managerProcess {
	dir := b.TempDir()
	bin := filepath.Join(dir, "manager")
	build := exec.Command("go", "build", "-o", bin, "../..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		b.Fatalf("build manager: %v", err)
	}

	user, err := env.AddUser(envtest.User{Name: "bench-admin", Groups: []string{"system:masters"}}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		b.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
		b.Fatal(err)
	}

	m := &managerProcess{metricsAddr: freeAddr(b)}
	m.cmd = exec.Command(bin,
		"--kubeconfig="+kubeconfig,
		"--metrics-bind-address="+m.metricsAddr, "--metrics-secure=false",
		"--health-probe-bind-address=0",
		"--sync-period="+syncPeriod.String(),
		"--zap-log-level=error")
	logFile, err := os.Create(filepath.Join(dir, "manager.log"))
	if err != nil {
		b.Fatal(err)
	}
	m.cmd.Stdout, m.cmd.Stderr = logFile, logFile
	if err := m.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return m
}

func (m *managerProcess) stop() {
	_ = m.cmd.Process.Signal(os.Interrupt)
	_ = m.cmd.Wait()
}

// reconciles reads controller_runtime_reconcile_total from the manager.
func (m *managerProcess) reconciles(b *testing.B) float64 {
	deadline := time.Now().Add(30 * time.Second)
	for {
		families, err := scrape("http://" + m.metricsAddr + "/metrics")
		if err == nil {
			total := 0.0
			for _, s := range families["controller_runtime_reconcile_total"].GetMetric() {
				total += s.GetCounter().GetValue()
			}
			return total
		}
		if time.Now().After(deadline) {
			b.Fatalf("scrape manager metrics: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// memory returns the manager's current and peak resident set size in bytes.
func (m *managerProcess) memory(b *testing.B) (rss, peak float64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(fields[1], 64)
		switch fields[0] {
		case "VmRSS:":
			rss = kb * 1024
		case "VmHWM:":
			peak = kb * 1024
		}
	}
	return rss, peak
}

// apiWrites sums the API server's count of write requests to the kinds the
// manager writes. Leases and endpoints are left out: the API server itself
// renews those.
func apiWrites(b *testing.B, cfg *rest.Config) float64 {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := hc.Get(strings.TrimSuffix(cfg.Host, "/") + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	families, err := parse(resp)
	if err != nil {
		b.Fatal(err)
	}
	kinds := map[string]bool{"configmaps": true, "deployments": true, "services": true,
		"poddisruptionbudgets": true, "tunedservices": true, "events": true}
	writes := map[string]bool{"POST": true, "PUT": true, "PATCH": true, "APPLY": true, "DELETE": true}
	total := 0.0
	for _, s := range families["apiserver_request_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if kinds[labels["resource"]] && writes[labels["verb"]] {
			total += s.GetCounter().GetValue()
		}
	}
	return total
}

func scrape(url string) (map[string]*promdto.MetricFamily, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return parse(resp)
}

func parse(resp *http.Response) (map[string]*promdto.MetricFamily, error) {
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Request.URL, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(resp.Body)
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
