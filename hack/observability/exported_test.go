package observability

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/pacer-dev/pacer/controllers"
	"github.com/pacer-dev/pacer/service/limiter"
	"github.com/pacer-dev/pacer/service/store"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// exportedNames is every series name the project exports: pacer-api's as
// service/telemetry registers them (under the service/metrics names), the
// operator's tuning collectors, and controller-runtime's as a running
// controller named like Pacer's exports them. A histogram counts as its
// _bucket, _sum and _count series.
func exportedNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	add := func(name string, histogram bool) {
		if histogram {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[name+s] = true
			}
			return
		}
		names[name] = true
	}

	// pacer-api: every instrument (vectors without series too, found by
	// walking the Metrics struct) and the scrape-time sources.
	x := telemetry.New()
	if err := x.RegisterSources(telemetry.Sources{
		Limiter:        func() limiter.Stats { return limiter.Stats{} },
		CacheEntries:   func() int { return 0 },
		CacheFills:     func() limiter.Stats { return limiter.Stats{} },
		RateLimitUsers: func() int { return 0 },
		JobsPending:    func() int64 { return 0 },
		JobsOldestAge:  func() time.Duration { return 0 },
		Pool:           func() store.Stats { return store.Stats{} },
		PoolSwaps:      func() int64 { return 0 },
	}); err != nil {
		t.Fatal(err)
	}
	describeFields(reflect.ValueOf(*x), add)
	gather(t, x.Registry, add)

	// The operator: its tuning collectors, and controller-runtime's.
	for _, c := range controllers.TuningCollectors {
		describe(c, add)
	}
	runController(t, "tunedservice")
	gather(t, crmetrics.Registry, add)
	return names
}

func describe(c prometheus.Collector, add func(string, bool)) {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	_, histogram := c.(*prometheus.HistogramVec)
	if _, ok := c.(prometheus.Histogram); ok {
		histogram = true
	}
	for d := range ch {
		// Desc has no accessor for its name; its String() starts with it.
		s := d.String()
		_, after, _ := strings.Cut(s, `fqName: "`)
		name, _, _ := strings.Cut(after, `"`)
		add(name, histogram)
	}
}

// describeFields describes every collector held in v's fields, recursively.
func describeFields(v reflect.Value, add func(string, bool)) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanInterface() {
			continue
		}
		if c, ok := f.Interface().(prometheus.Collector); ok && (f.Kind() != reflect.Pointer || !f.IsNil()) {
			describe(c, add)
			continue
		}
		if f.Kind() == reflect.Struct {
			describeFields(f, add)
		}
	}
}

func gather(t *testing.T, g prometheus.Gatherer, add func(string, bool)) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		add(f.GetName(), f.GetType() == dto.MetricType_HISTOGRAM)
	}
}

// runController starts a controller-runtime controller named name, feeds
// it one request and waits for the reconcile: then it has exported every
// reconcile and workqueue series it has.
func runController(t *testing.T, name string) {
	t.Helper()
	reconciled := make(chan struct{}, 1)
	c, err := controller.NewUnmanaged(name, controller.Options{
		SkipNameValidation: ptr.To(true),
		Reconciler: reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			select {
			case reconciled <- struct{}{}:
			default:
			}
			return reconcile.Result{}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan event.GenericEvent, 1)
	if err := c.Watch(source.Channel(events, &handler.EnqueueRequestForObject{})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Logf("controller stopped: %v", err)
		}
	})
	events <- event.GenericEvent{Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "x"}}}
	select {
	case <-reconciled:
	case err := <-done:
		t.Fatalf("controller stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("no reconcile within 30s")
	}
}
