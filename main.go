// Command manager runs the Pacer operator: it reconciles TunedServices into
// pacer-api Deployments, Services and ConfigMaps, and tunes them.
package main

import (
	"crypto/tls"
	"flag"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers"
	"github.com/pacer-dev/pacer/controllers/budget"
	"github.com/pacer-dev/pacer/controllers/metrics"
)

var scheme = runtime.NewScheme()

// defaultAPIImage is the pacer-api image this operator renders for a
// TunedService without spec.image; builds set it to the image built with
// them (-ldflags "-X main.defaultAPIImage=...").
var defaultAPIImage = pacerv1.DefaultImage

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(pacerv1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr          string
		probeAddr            string
		enableLeaderElection bool
		secureMetrics        bool
		enableHTTP2          bool
		syncPeriod           time.Duration
		watchNamespaces      string
		maxReconciles        int
		maxObservations      int
		observationTimeout   time.Duration
		promEndpoints        string
		metricsBudgetMiB     int64
		dialAllowed          []string
		httpCredentials      bool
		apiImage             string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0",
		"The address the metrics endpoint binds to, e.g. :8443 (HTTPS) or :8080 (HTTP); 0 disables it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election, so only one of several manager replicas is active.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"Serve metrics over HTTPS, allowing only authenticated and authorized clients.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"Enable HTTP/2 for the metrics server (off by default: HTTP/2 Rapid Reset, CVE-2023-44487).")
	flag.DurationVar(&syncPeriod, "sync-period", 10*time.Hour,
		"How often every watched object is reconciled again even if nothing changed.")
	flag.StringVar(&watchNamespaces, "watch-namespaces", "",
		"Comma-separated namespaces to watch and manage; empty means all. Pair it with the namespaced RBAC in config/namespaced.")
	flag.IntVar(&maxReconciles, "max-concurrent-reconciles", 4,
		"How many TunedServices are reconciled at once.")
	flag.IntVar(&maxObservations, "max-concurrent-observations", 32,
		"How many TunedServices' pods are observed at once, off the reconcile workers; services whose last observation was slow share a quarter as many slots of their own.")
	flag.DurationVar(&observationTimeout, "observation-timeout", 10*time.Second,
		"How long one observation of a TunedService's pods (or its Prometheus queries) may take; at most half its tuning interval.")
	flag.StringVar(&promEndpoints, "prometheus-endpoints", strings.Join(metrics.DefaultAllowedEndpoints, ","),
		"Comma-separated Prometheus servers TunedServices may name in spec.tuning.metrics.prometheusURL: "+
			"host patterns (*.svc matches any name ending in .svc) and CIDRs of IP literals (10.0.0.0/8). "+
			"A name is never dialled at a private, loopback, link-local, CGNAT or metadata address unless "+
			"--metrics-allow-cidr (or a CIDR here) allows it.")
	flag.Func("metrics-allow-cidr",
		"A CIDR that Prometheus URLs' names may be dialled at although it is private (repeatable, or comma-separated): "+
			"usually the cluster's Service CIDR, where a Prometheus Service's ClusterIP lies (and its pod CIDR for a headless Service).",
		func(v string) error {
			dialAllowed = append(dialAllowed, splitList(v)...)
			return nil
		})
	flag.Int64Var(&metricsBudgetMiB, "metrics-budget-mib", metrics.DefaultBudgetBytes>>20,
		"MiB of metrics answers (pod scrapes and Prometheus queries, decompressed) held in memory at once, all services together; "+
			"an answer that does not fit fails that observation. Keep it well under the manager's memory limit.")
	flag.BoolVar(&httpCredentials, "metrics-allow-http-credentials", false,
		"Send a TunedService's Prometheus credentials (authSecretRef, or a user and password in the URL) to a plain http prometheusURL, "+
			"where anyone on the network path can read them. Off: such URLs are refused.")
	flag.StringVar(&apiImage, "default-api-image", defaultAPIImage,
		"The pacer-api image of TunedServices that name no spec.image: the one released with this operator.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOpts := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if secureMetrics {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOpts,
		HealthProbeBindAddress: probeAddr,
		LeaderElection:         enableLeaderElection,
		LeaderElectionID:       "pacer.tuning.pacer.dev",
		// Step down at once on SIGTERM: the process exits right after.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         controllers.CacheOptions(splitList(watchNamespaces), &syncPeriod),
	})
	if err != nil {
		log.Error(err, "unable to create manager")
		os.Exit(1)
	}

	endpoints, err := metrics.ParseEndpointPolicy(splitList(promEndpoints))
	if err != nil {
		log.Error(err, "invalid --prometheus-endpoints")
		os.Exit(1)
	}
	endpoints, err = endpoints.WithDialAllowed(dialAllowed)
	if err != nil {
		log.Error(err, "invalid --metrics-allow-cidr")
		os.Exit(1)
	}

	ctx := ctrl.SetupSignalHandler()
	if err := (&controllers.TunedServiceReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("pacer"),
		Metrics: metrics.NewSources(metrics.SourcesOptions{
			Endpoints: endpoints, BudgetBytes: metricsBudgetMiB << 20, AllowHTTPCredentials: httpCredentials,
		}),

		DefaultImage:              apiImage,
		MaxConcurrentReconciles:   maxReconciles,
		MaxConcurrentObservations: maxObservations,
		ObservationTimeout:        observationTimeout,
	}).SetupWithManager(ctx, mgr); err != nil {
		log.Error(err, "unable to create controller", "controller", "TunedService")
		os.Exit(1)
	}

	// The one writer of ConnectionBudget allocations (its member index is
	// registered by the TunedService controller above).
	if err := (&budget.Reconciler{Client: mgr.GetClient(), Recorder: mgr.GetEventRecorder("pacer")}).SetupWithManager(mgr); err != nil {
		log.Error(err, "unable to create controller", "controller", "ConnectionBudget")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up ready check")
		os.Exit(1)
	}

	log.Info("starting manager")
	if err := mgr.Start(ctx); err != nil {
		log.Error(err, "problem running manager")
		os.Exit(1)
	}
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
