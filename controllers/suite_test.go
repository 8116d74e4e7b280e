package controllers

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/budget"
	"github.com/pacer-dev/pacer/controllers/metrics"
)

// The envtest suite: one real kube-apiserver and etcd for the package, the
// manager running the real reconciler against them, and a direct client
// (no cache) for the tests' own reads and writes. Each test works in a
// namespace of its own, so tests run in parallel.

var (
	suiteOnce sync.Once
	suiteErr  error
	suite     *testSuite
)

type testSuite struct {
	env    *envtest.Environment
	cfg    *rest.Config
	client client.Client // direct, uncached
	cached client.Client // the manager's, reading from its cache
	cancel context.CancelFunc
	done   chan struct{}

	// writes counts the reconciler's API writes per namespace.
	writes *writeCounter
	// dialer routes the operator's scrapes of test pods.
	dialer *podDialer
	// reconciler is the manager's, for its observers.
	reconciler *TunedServiceReconciler
}

// observationTimeout is long, so that a test can hold a scrape outstanding
// while it checks what else goes on; a tuning interval still cuts each
// observation to half of it (2.5s at the tests' usual 5s).
const observationTimeout = 2 * time.Minute

// syncPeriod is short so periodic resyncs re-run every reconcile while the
// tests watch: steady state must then still write nothing.
const syncPeriod = 5 * time.Second

var testScheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(pacerv1.AddToScheme(s))
	return s
}()

// startSuite starts the shared control plane and manager once. Without
// envtest binaries the test is skipped, or fails in CI.
func startSuite(t *testing.T) *testSuite {
	t.Helper()
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		msg := "KUBEBUILDER_ASSETS is not set; run `export KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh)` or `make test`"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	suiteOnce.Do(func() { suite, suiteErr = newSuite() })
	if suiteErr != nil {
		t.Fatalf("start envtest: %v", suiteErr)
	}
	return suite
}

func newSuite() (*testSuite, error) {
	logf.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true), zap.Level(zapLevel())))
	s := &testSuite{
		env: &envtest.Environment{
			CRDDirectoryPaths:     []string{filepath.Join("..", "config", "crd", "bases")},
			ErrorIfCRDPathMissing: true,
		},
		done:   make(chan struct{}),
		dialer: &podDialer{},
	}
	cfg, err := s.env.Start()
	if err != nil {
		return nil, err
	}
	s.cfg = cfg
	if s.client, err = client.New(cfg, client.Options{Scheme: testScheme}); err != nil {
		return nil, err
	}

	// The manager runs as a user holding exactly the ClusterRole that
	// `make manifests` generates from the RBAC markers: a missing
	// permission fails these tests as it would fail in a cluster.
	mgrCfg, err := s.managerUser()
	if err != nil {
		return nil, err
	}

	period := syncPeriod
	mgr, err := ctrl.NewManager(mgrCfg, ctrl.Options{
		Scheme:                 testScheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		Cache:                  CacheOptions(nil, &period),
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, err
	}
	s.cached = mgr.GetClient()
	s.writes = newWriteCounter(mgr.GetClient())
	r := &TunedServiceReconciler{
		Client:    s.writes,
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("pacer"),
		Metrics: metrics.NewSources(metrics.SourcesOptions{Pods: metrics.PodsOptions{
			Client: s.scrapeClient(), Timeout: observationTimeout,
		}}),
		ObservationTimeout: observationTimeout,
	}
	s.reconciler = r
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		cancel()
		return nil, err
	}
	if err := (&budget.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("pacer")}).SetupWithManager(mgr); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		defer close(s.done)
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager stopped:", err)
		}
	}()
	return s, nil
}

// scrapeClient reaches test pods only: a pod address no test registered is
// refused rather than dialled, so no scrape ever leaves loopback.
func (s *testSuite) scrapeClient() *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			real, ok := s.dialer.resolve(addr)
			if !ok {
				return nil, fmt.Errorf("no test pod at %s", addr)
			}
			return d.DialContext(ctx, network, real)
		},
	}}
}

// managerUser provisions the manager's user, bound to config/rbac/role.yaml.
func (s *testSuite) managerUser() (*rest.Config, error) {
	const name = "pacer-manager"
	user, err := s.env.AddUser(envtest.User{Name: name}, s.cfg)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		return nil, err
	}
	role := &rbacv1.ClusterRole{}
	if err := yaml.UnmarshalStrict(data, role); err != nil {
		return nil, fmt.Errorf("config/rbac/role.yaml: %w", err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: name}},
	}
	ctx := context.Background()
	if err := s.client.Create(ctx, role); err != nil {
		return nil, err
	}
	if err := s.client.Create(ctx, binding); err != nil {
		return nil, err
	}
	return user.Config(), nil
}

func zapLevel() zapcore.Level {
	if os.Getenv("PACER_TEST_VERBOSE") != "" {
		return zapcore.DebugLevel
	}
	return zapcore.ErrorLevel
}

func TestMain(m *testing.M) {
	code := m.Run()
	if suite != nil {
		suite.cancel()
		<-suite.done
		if err := suite.env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stop envtest:", err)
		}
	}
	os.Exit(code)
}

// namespace creates a namespace for one test.
func (s *testSuite) namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "test-"}}
	if err := s.client.Create(context.Background(), ns); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return ns.Name
}
