// Package benchoperator measures the manager at scale: the real manager
// binary against a real kube-apiserver and etcd (envtest), with 1,000
// TunedServices, 100 of them tuned in Auto with pods whose /metrics accept
// and never answer. Run it with `make bench-operator`.
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
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	promdto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/limiter"
	"github.com/pacer-dev/pacer/service/store"
	"github.com/pacer-dev/pacer/service/telemetry"
)

const (
	tunedServices = 1000
	// hungServices are tuned in Auto and their one pod's /metrics accepts
	// the connection and never answers.
	hungServices = 100
	// healthyAuto are tuned in Auto and their pod answers with pacer-api's
	// own metrics (an idle pod); the rest have tuning Disabled and no pods.
	healthyAuto = 100
	// tuningInterval is short so the hung pods are scraped often: with the
	// 5s scrape timeout about half of them hang at any moment.
	tuningInterval = 10 * time.Second
	// syncPeriod makes the manager re-run every reconcile during the steady
	// window, so "no writes" is measured under work, not idleness.
	syncPeriod   = 20 * time.Second
	steadyWindow = 60 * time.Second
	repairs      = 7
)

// BenchmarkOperatorAt1000 reports: seconds until every TunedService is
// reconciled (and every Auto one has a first observation in status), API
// writes per minute at rest (target 0), how long a healthy service's
// deleted ConfigMap takes to come back while the 100 hang (target < 5s),
// and the manager's peak RSS (target < 256 MiB).
func BenchmarkOperatorAt1000(b *testing.B) {
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

	// The pods' admin ports: one loopback address each, port 9090, as the
	// operator dials pod IPs.
	hung := make([]*testenv.Hanging, hungServices)
	for i := range hung {
		hung[i] = testenv.ListenHanging(b, net.JoinHostPort(podIP(1, i), strconv.Itoa(render.AdminPort)))
	}
	metricsHandler := pacerAPIMetrics(b)
	for i := range healthyAuto {
		serveMetrics(b, podIP(2, i), metricsHandler)
	}

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
	cfg.QPS, cfg.Burst = 500, 1000 // the benchmark's own client
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
	// Pods first, so that each Auto service's first observation finds its pod.
	for i := range hungServices + healthyAuto {
		ts := tunedService(i)
		ip := podIP(1, i)
		if i >= hungServices {
			ip = podIP(2, i-hungServices)
		}
		createReadyPod(b, c, ts, ip)
	}

	start := time.Now()
	for i := range tunedServices {
		if err := c.Create(ctx, tunedService(i)); err != nil {
			b.Fatal(err)
		}
	}
	converged := waitConverged(b, c)
	toConverge := converged.Sub(start)
	// Let status writes and events from the creation wave finish.
	time.Sleep(15 * time.Second)

	writesBefore := apiWrites(b, cfg)
	steadyBefore := manager.reconciles(b)
	time.Sleep(steadyWindow)
	writesAfter := apiWrites(b, cfg)
	steadyReconciles := manager.reconciles(b) - steadyBefore
	steadyWrites := 0.0
	for k, v := range writesAfter {
		if d := v - writesBefore[k]; d > 0 {
			steadyWrites += d
			b.Logf("writes at rest: %s %.0f", k, d)
		}
	}

	// Repair a healthy Auto service's ConfigMap, and a Disabled one's
	// Deployment, while the hung pods keep hanging.
	var latencies []time.Duration
	minHanging := hungServices
	for k := range repairs {
		i := hungServices + k*(healthyAuto/repairs) // healthy, in Auto
		var obj client.Object = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%04d-config", i)}}
		if k%2 == 1 {
			i = hungServices + healthyAuto + k*50 // Disabled
			obj = &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%04d", i)}}
		}
		open := 0
		for _, h := range hung {
			open += h.Open()
		}
		minHanging = min(minHanging, open)
		latencies = append(latencies, repair(b, c, obj))
		time.Sleep(2 * time.Second)
	}
	slices.Sort(latencies)
	rss, peak := manager.memory(b)
	// The figures are of a manager that observed its healthy services:
	// every healthy pod answered every scrape, and each healthy service's
	// last window covers its pod.
	if n := metricsHandler.panics.Load(); n > 0 {
		b.Fatalf("the healthy pods' /metrics panicked %d times: the benchmark observed no healthy service", n)
	}
	checkHealthyObserved(b, c)

	b.ReportMetric(toConverge.Seconds(), "s-to-converge")
	b.ReportMetric(steadyWrites/steadyWindow.Minutes(), "writes/min-at-rest")
	b.ReportMetric(steadyReconciles/steadyWindow.Seconds(), "reconciles/s-at-rest")
	b.ReportMetric(latencies[len(latencies)/2].Seconds(), "s-repair-median")
	b.ReportMetric(latencies[len(latencies)-1].Seconds(), "s-repair-max")
	b.ReportMetric(float64(minHanging), "hung-scrapes-open-at-repair")
	b.ReportMetric(peak/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(rss/(1<<20), "RSS-MiB")
	b.Logf("\n| figure | value | target |\n|---|---|---|\n"+
		"| time until all %d TunedServices are reconciled and every Auto one has observed | %.1f s | |\n"+
		"| API writes per minute at rest (resync every %s, tuning every %s) | %.1f | 0 |\n"+
		"| reconciles per second at rest | %.1f | |\n"+
		"| repair of a healthy service's deleted child while %d hang: median / max of %d | %.2f / %.2f s | < 5 s |\n"+
		"| hung scrapes outstanding at each repair (at least) | %d | |\n"+
		"| manager RSS at the end / peak | %.0f / %.0f MiB | < 256 MiB |",
		tunedServices, toConverge.Seconds(), syncPeriod, tuningInterval, steadyWrites/steadyWindow.Minutes(),
		steadyReconciles/steadyWindow.Seconds(), hungServices, repairs,
		latencies[len(latencies)/2].Seconds(), latencies[len(latencies)-1].Seconds(), minHanging, rss/(1<<20), peak/(1<<20))
}

func tunedService(i int) *pacerv1.TunedService {
	ts := &pacerv1.TunedService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "bench", Name: fmt.Sprintf("svc-%04d", i)},
		Spec: pacerv1.TunedServiceSpec{
			Database: pacerv1.DatabaseSpec{URLSecretRef: pacerv1.SecretKeyRef{Name: "db", Key: "url"}},
			Tuning:   pacerv1.TuningSpec{Mode: pacerv1.TuningDisabled},
		},
	}
	if i < hungServices+healthyAuto {
		ts.Spec.Tuning.Mode = pacerv1.TuningAuto
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: tuningInterval}
	}
	return ts
}

// podIP is the loopback address of pod i of a group (1 hung, 2 healthy).
func podIP(group, i int) string { return fmt.Sprintf("127.77.%d.%d", group, i+1) }

func createReadyPod(b *testing.B, c client.Client, ts *pacerv1.TunedService, ip string) {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ts.Namespace, Name: ts.Name + "-0", Labels: render.Labels(ts)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: render.ContainerName, Image: "pacer-api"}}},
	}
	if err := c.Create(context.Background(), p); err != nil {
		b.Fatal(err)
	}
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}
	if err := c.Status().Update(context.Background(), p); err != nil {
		b.Fatal(err)
	}
}

// waitConverged waits until every TunedService's status is of its
// generation and every Auto one reports a first observation.
func waitConverged(b *testing.B, c client.Client) time.Time {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		var list pacerv1.TunedServiceList
		if err := c.List(context.Background(), &list, client.InNamespace("bench")); err != nil {
			b.Fatal(err)
		}
		done := 0
		for _, ts := range list.Items {
			if ts.Status.ObservedGeneration != ts.Generation {
				continue
			}
			if ts.Spec.Tuning.Mode == pacerv1.TuningAuto {
				t := meta.FindStatusCondition(ts.Status.Conditions, pacerv1.ConditionTuned)
				if t == nil || t.Reason == "AwaitingMetrics" {
					continue
				}
			}
			done++
		}
		if done == tunedServices {
			return time.Now()
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d TunedServices converged after 10 minutes", done, tunedServices)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// repair deletes obj and returns how long the operator took to create it again.
func repair(b *testing.B, c client.Client, obj client.Object) time.Duration {
	ctx := context.Background()
	if err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		b.Fatal(err)
	}
	old := obj.GetUID()
	start := time.Now()
	if err := c.Delete(ctx, obj); err != nil {
		b.Fatal(err)
	}
	deadline := start.Add(2 * time.Minute)
	for {
		err := c.Get(ctx, client.ObjectKeyFromObject(obj), obj)
		if err == nil && obj.GetUID() != old {
			return time.Since(start)
		}
		if err != nil && !apierrors.IsNotFound(err) {
			b.Fatal(err)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s not recreated within 2 minutes", obj.GetName())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// healthyHandler serves the healthy pods' /metrics and counts its panics.
type healthyHandler struct {
	next   http.Handler
	panics atomic.Int64
}

func (h *healthyHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			h.panics.Add(1)
			http.Error(w, fmt.Sprint("panic: ", v), http.StatusInternalServerError)
		}
	}()
	h.next.ServeHTTP(w, r)
}

// checkHealthyObserved fails the benchmark unless every healthy Auto
// service's last observation covers its one pod: a failed observation of
// a healthy service means the figures are not of the manager's real work.
func checkHealthyObserved(b *testing.B, c client.Client) {
	var list pacerv1.TunedServiceList
	if err := c.List(context.Background(), &list, client.InNamespace("bench")); err != nil {
		b.Fatal(err)
	}
	byName := map[string]*pacerv1.TunedService{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	var failed []string
	for i := hungServices; i < hungServices+healthyAuto; i++ {
		ts := byName[tunedService(i).Name]
		switch {
		case ts == nil:
			failed = append(failed, fmt.Sprintf("svc-%04d: gone", i))
		case ts.Status.LastObservation == nil:
			failed = append(failed, ts.Name+": no observation")
		case ts.Status.LastObservation.Pods != 1:
			failed = append(failed, fmt.Sprintf("%s: observed %d pods (%s)", ts.Name, ts.Status.LastObservation.Pods, ts.Status.LastObservation.Reason))
		}
		if ts != nil {
			if t := meta.FindStatusCondition(ts.Status.Conditions, pacerv1.ConditionTuned); t != nil &&
				(t.Reason == "ObservationFailed" || t.Reason == "MetricsUnavailable") {
				failed = append(failed, ts.Name+": "+t.Reason+": "+t.Message)
			}
		}
	}
	if len(failed) > 0 {
		b.Fatalf("%d healthy services not observed, e.g. %s", len(failed), strings.Join(failed[:min(5, len(failed))], "; "))
	}
}

// pacerAPIMetrics serves pacer-api's own registry (service/telemetry), as
// an idle pod on its first config generation shows it.
func pacerAPIMetrics(b *testing.B) *healthyHandler {
	m := telemetry.New()
	m.ConfigGen.Set(1)
	m.ConfigLastOK.SetToCurrentTime()
	for _, route := range []string{"/v1/users", "/v1/users/{id}"} {
		m.Requests.WithLabelValues(route, http.MethodGet, "2xx").Add(1000)
		for range 100 {
			m.RequestDuration.WithLabelValues(route, http.MethodGet, "2xx").Observe(0.004)
		}
	}
	if err := m.RegisterSources(telemetry.Sources{
		Limiter:        func() limiter.Stats { return limiter.Stats{Limits: limiter.Limits{MaxInFlight: 8, QueueDepth: 64}} },
		CacheEntries:   func() int { return 12 },
		CacheFills:     func() limiter.Stats { return limiter.Stats{Limits: limiter.Limits{MaxInFlight: 4}} },
		RateLimitUsers: func() int { return 0 },
		JobsPending:    func() int64 { return 0 },
		JobsOldestAge:  func() time.Duration { return 0 },
		Pool:           func() store.Stats { return store.Stats{IdleConns: 2, TotalConns: 2, MaxConns: 10, AcquireCount: 2000} },
		PoolSwaps:      func() int64 { return 0 },
	}); err != nil {
		b.Fatal(err)
	}
	return &healthyHandler{next: promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})}
}

func serveMetrics(b *testing.B, ip string, h http.Handler) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(render.AdminPort)))
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	b.Cleanup(func() { _ = srv.Close() })
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

// apiWrites counts the API server's write requests, by resource and verb,
// to the kinds the manager writes. Leases and endpoints are left out: the
// API server itself renews those; pods are the benchmark's own.
func apiWrites(b *testing.B, cfg *rest.Config) map[string]float64 {
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
	out := map[string]float64{}
	for _, s := range families["apiserver_request_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range s.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if kinds[labels["resource"]] && writes[labels["verb"]] {
			out[labels["resource"]+"/"+labels["subresource"]+" "+labels["verb"]] += s.GetCounter().GetValue()
		}
	}
	return out
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
