package controllers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/internal/testenv"
	"github.com/pacer-dev/pacer/service/app"
	"github.com/pacer-dev/pacer/service/config"
)

// The tuning loop end to end, but for the kubelet: a real pacer-api runs
// in the test process from the ConfigMap the operator renders (re-read
// live as a kubelet would update the mounted file), a Pod object stands
// for it, the operator scrapes its real metrics, decides, and applies.

func TestAutoTuningRaisesWorkersFromRealMetrics(t *testing.T) {
	s, g, ts := startCase(t, "auto", overloaded(pacerv1.TuningAuto))
	ns := ts.Namespace

	pod := runPod(t, s, ts)
	pod.load(t, 16)

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "auto-config"}}
	var raised pacerv1.Change
	g.Eventually(func(g Gomega) {
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		g.Expect(cur.Status.History).NotTo(BeEmpty(), "no decision yet; conditions: %+v", cur.Status.Conditions)
		d := cur.Status.History[len(cur.Status.History)-1] // the first decision
		g.Expect(d.Applied).To(BeTrue())
		g.Expect(d.Changes).To(ContainElement(HaveField("Setting", "maxInFlight")))
		for _, c := range d.Changes {
			if c.Setting == "maxInFlight" {
				raised = c
			}
		}
		g.Expect(raised.To).To(BeNumerically(">", raised.From))
		g.Expect(raised.Reason).NotTo(BeEmpty())
	}, 90*time.Second, poll).Should(Succeed())

	// The decision reached the ConfigMap, and the running pod took it live.
	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, cm)()).To(Succeed())
		c, err := config.Parse([]byte(cm.Data[render.ConfigKey]))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Workers.MaxInFlight).To(BeNumerically(">=", int(raised.To)))
		g.Expect(pod.app.Config().Workers.MaxInFlight).To(Equal(c.Workers.MaxInFlight))
	}, eventually, poll).Should(Succeed())

	g.Eventually(func(g Gomega) {
		var tunedEvents []string
		for _, e := range eventsAbout(g, s.client, ns, "auto") {
			if e.Reason == "Tuned" {
				tunedEvents = append(tunedEvents, e.Note)
			}
		}
		g.Expect(tunedEvents).To(ContainElement(ContainSubstring("maxInFlight")))
		c := condition(g, s.client, ts, pacerv1.ConditionTuned)
		g.Expect(c.Message).NotTo(BeEmpty())
	}, eventually, poll).Should(Succeed())
}

func TestRecommendModeChangesOnlyStatus(t *testing.T) {
	s, g, ts := startCase(t, "advice", overloaded(pacerv1.TuningRecommend))
	ns := ts.Namespace

	pod := runPod(t, s, ts)
	pod.load(t, 16)

	g.Eventually(func(g Gomega) {
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		rec := cur.Status.Recommendation
		g.Expect(rec).NotTo(BeNil(), "no recommendation yet; conditions: %+v", cur.Status.Conditions)
		g.Expect(rec.Settings.MaxInFlight).To(BeNumerically(">", 1), "conditions: %+v", cur.Status.Conditions)
		g.Expect(cur.Status.History).NotTo(BeEmpty())
		g.Expect(cur.Status.History[0].Applied).To(BeFalse())
		g.Expect(cur.Status.Effective.MaxInFlight).To(Equal(int32(1)), "Recommend must not apply")
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionTuned).Reason).To(Equal("Recommending"))
	}, 90*time.Second, poll).Should(Succeed())

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "advice-config"}}
	g.Expect(get(s.client, cm)()).To(Succeed())
	c, err := config.Parse([]byte(cm.Data[render.ConfigKey]))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(c.Workers.MaxInFlight).To(Equal(1))
	g.Expect(c.Generation).To(Equal(int64(1)), "Recommend rendered a new config")
}

// overloaded is a TunedService whose single worker cannot meet its
// objective under the test's load, and whose workers the tuner may raise.
func overloaded(mode pacerv1.TuningMode) tsOption {
	return func(ts *pacerv1.TunedService) {
		// The test pod shares the test process, whose CPU use it reports:
		// give it room, so the tuner sees queueing rather than saturation.
		ts.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16")}}
		ts.Spec.Workers = pacerv1.WorkersSpec{
			MaxInFlight:  1,
			QueueDepth:   ptr.To[int32](256),
			QueueTimeout: &metav1.Duration{Duration: 5 * time.Second},
		}
		ts.Spec.Tuning = pacerv1.TuningSpec{
			Mode:      mode,
			Interval:  &metav1.Duration{Duration: 5 * time.Second},
			Objective: pacerv1.ObjectiveSpec{LatencyP99: &metav1.Duration{Duration: 5 * time.Millisecond}},
			Bounds:    pacerv1.TuningBounds{Workers: &pacerv1.Int32Range{Min: 1, Max: 64}},
			Stabilization: pacerv1.StabilizationSpec{
				ScaleUp:   &metav1.Duration{},
				ScaleDown: &metav1.Duration{Duration: 5 * time.Minute},
			},
		}
	}
}

// testPod is a pacer-api standing in for a TunedService's pod.
type testPod struct {
	app *app.App
	api string // base URL
	dsn string // its database
}

// runPod starts pacer-api from the TunedService's ConfigMap, keeps its
// config file in step with the ConfigMap as a kubelet would, and creates a
// ready Pod object whose address the operator's scrapes reach it by.
func runPod(t *testing.T, s *testSuite, ts *pacerv1.TunedService) *testPod {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dsn := testenv.FreshDatabase(t)
	cmKey := client.ObjectKey{Namespace: ts.Namespace, Name: render.ConfigMapName(ts)}
	path := filepath.Join(t.TempDir(), render.ConfigKey)

	// Mirror the ConfigMap into the file pacer-api watches.
	sync := func() (config.Config, error) {
		cm := &corev1.ConfigMap{}
		if err := s.client.Get(ctx, cmKey, cm); err != nil {
			return config.Config{}, err
		}
		c, err := config.Parse([]byte(cm.Data[render.ConfigKey]))
		if err != nil {
			return config.Config{}, err
		}
		// Each test pod listens on ports of its own.
		c.Server.Addr, c.Server.AdminAddr = "127.0.0.1:0", "127.0.0.1:0"
		data, err := config.Marshal(c)
		if err != nil {
			return config.Config{}, err
		}
		if cur, _ := os.ReadFile(path); string(cur) == string(data) {
			return c, nil
		}
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return config.Config{}, err
		}
		return c, os.Rename(tmp, path)
	}
	var cfg config.Config
	NewWithT(t).Eventually(func() error { var err error; cfg, err = sync(); return err }, eventually, poll).Should(Succeed())

	a, err := app.Start(ctx, app.Options{
		Config:     cfg,
		ConfigPath: path,
		Getenv:     func(k string) string { return map[string]string{"DATABASE_URL": dsn}[k] },
		LogOutput:  io.Discard,
	})
	if err != nil {
		cancel()
		t.Fatalf("start pacer-api: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
				_, _ = sync()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = a.Wait()
	})

	// A Pod object with an address only this test's dialer knows.
	fakePod(t, s, ts, s.dialer.register(t, a.AdminAddr(), render.AdminPort))

	api := "http://" + a.APIAddr()
	NewWithT(t).Eventually(func() (int, error) {
		resp, err := http.Get(api + "/v1/users?limit=1")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, eventually, poll).Should(Equal(http.StatusOK), "pacer-api never became ready")
	return &testPod{app: a, api: api, dsn: dsn}
}

// load sends requests from n clients until the test ends, at most 3 minutes.
func (p *testPod) load(t *testing.T, n int) {
	t.Helper()
	resp, err := http.Post(p.api+"/v1/users", "application/json",
		strings.NewReader(`{"name":"Load","email":"load@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.api+"/v1/users?limit=20", nil)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						time.Sleep(10 * time.Millisecond)
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// podDialer maps made-up pod addresses to the test pods' real ones, so the
// operator scrapes "podIP:9090" as it would in a cluster.
type podDialer struct {
	mu    sync.Mutex
	next  int
	addrs map[string]string
}

func (d *podDialer) register(t *testing.T, real string, port int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	ip := fmt.Sprintf("10.250.%d.%d", d.next/250, d.next%250+1)
	if d.addrs == nil {
		d.addrs = map[string]string{}
	}
	d.addrs[fmt.Sprintf("%s:%d", ip, port)] = real
	return ip
}

func (d *podDialer) resolve(addr string) (string, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	real, ok := d.addrs[addr]
	return real, ok
}

// TestLeavingAutoHoldAndAUserEdit drives the loop through the reconciler:
// a raise in Auto, then Recommend (the raised value stays: the way back to
// the spec waits for the 5m scale-down window; main jumped back at once),
// then Hold (frozen, nothing scraped), then a user's edit, which wins at once.
func TestLeavingAutoHoldAndAUserEdit(t *testing.T) {
	s, g, ts := startCase(t, "modes", overloaded(pacerv1.TuningAuto))
	pod := runPod(t, s, ts)
	pod.load(t, 16)

	var raised int32
	g.Eventually(func(g Gomega) {
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		g.Expect(cur.Status.Effective).NotTo(BeNil())
		raised = cur.Status.Effective.MaxInFlight
		g.Expect(raised).To(BeNumerically(">", 1), "conditions: %+v", cur.Status.Conditions)
	}, 90*time.Second, poll).Should(Succeed())

	setSpec := func(f func(*pacerv1.TunedService)) {
		g.Eventually(func() error {
			cur := &pacerv1.TunedService{}
			if err := get(s.client, withKey(cur, ts))(); err != nil {
				return err
			}
			f(cur)
			return s.client.Update(context.Background(), cur)
		}, eventually, poll).Should(Succeed())
	}
	effective := func(g Gomega) *pacerv1.TunedService {
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		return cur
	}

	setSpec(func(cur *pacerv1.TunedService) { cur.Spec.Tuning.Mode = pacerv1.TuningRecommend })
	g.Eventually(func(g Gomega) {
		cur := effective(g)
		// The first interval after the change decides in Recommend mode.
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionTuned).Reason).NotTo(Equal("Applied"))
		g.Expect(cur.Status.Effective.MaxInFlight).To(BeNumerically(">=", raised), "leaving Auto jumped back to the spec")
	}, 90*time.Second, poll).Should(Succeed())

	setSpec(func(cur *pacerv1.TunedService) { cur.Spec.Tuning.Mode = pacerv1.TuningHold })
	g.Eventually(func(g Gomega) {
		effective(g)
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionTuned).Reason).To(Equal("Held"))
	}, 90*time.Second, poll).Should(Succeed())

	setSpec(func(cur *pacerv1.TunedService) { cur.Spec.Workers.MaxInFlight = 3 })
	g.Eventually(func(g Gomega) {
		cur := effective(g)
		g.Expect(cur.Status.Effective.MaxInFlight).To(Equal(int32(3)))
		g.Expect(cur.Status.History).NotTo(BeEmpty())
		g.Expect(cur.Status.History[0].Changes).To(ContainElement(HaveField("Reason", HavePrefix("user edit:"))))
		g.Expect(pod.app.Config().Workers.MaxInFlight).To(Equal(3))
	}, eventually, poll).Should(Succeed())
}
