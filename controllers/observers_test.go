package controllers

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/telemetry"
)

// Observation runs off the reconcile workers: a TunedService whose pod
// accepts the scrape and never answers still has its deleted ConfigMap
// recreated while that scrape is outstanding, and so does another
// TunedService's deleted Deployment. (On main the scrape ran inside
// Reconcile and held the hung service's pass until the scrape timed out.)
func TestHungMetricsDelayNoRepair(t *testing.T) {
	s, g, calm := startCase(t, "calm")
	ns := calm.Namespace
	hung := newTunedService(ns, "hung", func(ts *pacerv1.TunedService) {
		ts.Spec.Tuning.Mode = pacerv1.TuningAuto
		// The scrape may run up to half the interval: the suite's whole
		// observationTimeout, far longer than this test.
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: time.Hour}
	})
	// The pod first: the first observation, made at once, finds it.
	l := testenv.ListenHanging(t, "127.0.0.1:0")
	fakePod(t, s, hung, s.dialer.register(t, l.Addr().String(), render.AdminPort))
	create(t, s.client, hung)
	select {
	case <-l.Accepted:
	case <-time.After(eventually):
		t.Fatal("the hung pod was never scraped")
	}

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.ConfigMapName(hung)}}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "calm"}}
	g.Eventually(get(s.client, deploy), eventually, poll).Should(Succeed())
	g.Eventually(get(s.client, cm), eventually, poll).Should(Succeed())
	oldCM, oldDeploy := cm.UID, deploy.UID
	g.Expect(s.client.Delete(context.Background(), cm)).To(Succeed())
	g.Expect(s.client.Delete(context.Background(), deploy)).To(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, cm)()).To(Succeed())
		g.Expect(cm.UID).NotTo(Equal(oldCM))
		g.Expect(get(s.client, deploy)()).To(Succeed())
		g.Expect(deploy.UID).NotTo(Equal(oldDeploy))
	}, eventually, poll).Should(Succeed())

	g.Expect(l.Open()).To(Equal(1), "the hung scrape ended before the repairs: they waited for it")
	g.Expect(l.Total()).To(Equal(1), "the hung pod was scraped again while its scrape was outstanding")
}

// An observer runs while its TunedService is in Auto, its finished
// windows reach the loop (status shows the observation and the step's
// condition), and its goroutine stops in Hold and on delete.
func TestObserversFollowTheMode(t *testing.T) {
	s, g, ts := startCase(t, "watched", func(ts *pacerv1.TunedService) {
		ts.Spec.Tuning.Mode = pacerv1.TuningAuto
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
	})
	key := client.ObjectKeyFromObject(ts)
	metricsServer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, "# TYPE pacer_config_generation gauge\npacer_config_generation 1\n")
	}))
	t.Cleanup(metricsServer.Close)
	fakePod(t, s, ts, s.dialer.register(t, metricsServer.Listener.Addr().String(), render.AdminPort))

	g.Eventually(func(g Gomega) {
		g.Expect(s.reconciler.observers.Live(key)).To(Equal(1))
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		o := cur.Status.LastObservation
		g.Expect(o).NotTo(BeNil(), "no observation in status; conditions: %+v", cur.Status.Conditions)
		g.Expect(o.Window.Duration).To(BeNumerically(">", 0), "a window needs two scrapes: %+v", o)
		c := condition(g, s.client, ts, pacerv1.ConditionTuned)
		g.Expect(c.Reason).To(BeElementOf("InsufficientMetrics", "Holding"), "the loop did not step on the window: %+v", c)
	}, eventually, poll).Should(Succeed())

	setMode := func(m pacerv1.TuningMode) {
		g.Eventually(func() error {
			cur := &pacerv1.TunedService{}
			if err := get(s.client, withKey(cur, ts))(); err != nil {
				return err
			}
			cur.Spec.Tuning.Mode = m
			return s.client.Update(context.Background(), cur)
		}, eventually, poll).Should(Succeed())
	}
	setMode(pacerv1.TuningHold)
	g.Eventually(func(g Gomega) {
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionTuned).Reason).To(Equal("Held"))
		g.Expect(s.reconciler.observers.Live(key)).To(BeZero(), "the observer runs on in Hold")
	}, eventually, poll).Should(Succeed())

	setMode(pacerv1.TuningAuto)
	g.Eventually(func() int { return s.reconciler.observers.Live(key) }, eventually, poll).Should(Equal(1))

	g.Expect(s.client.Delete(context.Background(), ts)).To(Succeed())
	g.Eventually(func() int { return s.reconciler.observers.Live(key) }, eventually, poll).
		Should(BeZero(), "the observer outlived its TunedService")
}

// fakePod creates a ready Pod of ts at ip, as a kubelet would report it.
func fakePod(t *testing.T, s *testSuite, ts *pacerv1.TunedService, ip string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ts.Namespace, Name: ts.Name + "-pod", Labels: render.Labels(ts)},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: render.ContainerName, Image: "pacer-api"}}},
	}
	create(t, s.client, p)
	p.Status = corev1.PodStatus{
		Phase: corev1.PodRunning, PodIP: ip,
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
	}
	if err := s.client.Status().Update(context.Background(), p); err != nil {
		t.Fatalf("mark pod ready: %v", err)
	}
}

// An idle service in Auto, whose pod answers with pacer-api's own metrics
// and serves nothing, writes nothing at rest: each interval's window is
// taken, and the same advice is not written again with a new time.
func TestIdleAutoServiceWritesNothingAtRest(t *testing.T) {
	s, g, ts := startCase(t, "idle", func(ts *pacerv1.TunedService) {
		ts.Spec.Tuning.Mode = pacerv1.TuningAuto
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
	})
	m := telemetry.New()
	m.ConfigGen.Set(1)
	scrapes := make(chan struct{}, 64)
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		select {
		case scrapes <- struct{}{}:
		default:
		}
	}))
	t.Cleanup(srv.Close)
	fakePod(t, s, ts, s.dialer.register(t, srv.Listener.Addr().String(), render.AdminPort))

	g.Eventually(func(g Gomega) {
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionTuned).Reason).To(Equal("Holding"))
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		g.Expect(cur.Status.Recommendation).NotTo(BeNil())
	}, eventually, poll).Should(Succeed())

	before := s.writes.In(ts.Namespace)
	for range 4 { // three windows taken, and the fourth begun
		select {
		case <-scrapes:
		case <-time.After(eventually):
			t.Fatal("the idle pod is no longer scraped")
		}
	}
	g.Expect(s.writes.In(ts.Namespace)).To(Equal(before), "writes at rest")
}
