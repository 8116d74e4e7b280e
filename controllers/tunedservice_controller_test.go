package controllers

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/service/config"
)

func TestCreatesChildrenFromAThreeLineSpec(t *testing.T) {
	s, g, ts := startCase(t, "users")
	ns := ts.Namespace

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users-config"}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users"}}
	for _, obj := range []client.Object{cm, dep, svc} {
		g.Eventually(get(s.client, obj), eventually, poll).Should(Succeed(), "%T", obj)
		ref := metav1.GetControllerOf(obj)
		g.Expect(ref).NotTo(BeNil(), "%T has no controller", obj)
		g.Expect(ref.Name).To(Equal("users"))
		g.Expect(ref.Kind).To(Equal("TunedService"))
		// The garbage collector deletes children with their owner, and
		// blocks the owner's foreground deletion until they are gone.
		g.Expect(ptr.Deref(ref.BlockOwnerDeletion, false)).To(BeTrue())
		g.Expect(obj.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "pacer"))
		g.Expect(obj.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/instance", "users"))
		g.Expect(obj.GetLabels()).To(HaveKeyWithValue("app.kubernetes.io/name", "pacer-api"))
	}

	// One replica: no PodDisruptionBudget, which would block node drains.
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "users"}}
	g.Consistently(get(s.client, pdb), 2*time.Second, poll).Should(Satisfy(apierrors.IsNotFound))

	// The API server's defaults and pacer-api's own defaults are one set of values.
	rendered, err := config.Parse([]byte(cm.Data[render.ConfigKey]))
	g.Expect(err).NotTo(HaveOccurred())
	want := config.Default()
	want.Generation, want.Log.Format = 1, "json"
	if diff := cmp.Diff(want, rendered); diff != "" {
		t.Errorf("rendered config differs from pacer-api's defaults (-want +got):\n%s", diff)
	}
	g.Expect(cm.Data[render.ConfigKey]).NotTo(ContainSubstring("s3cret"), "no secret in a ConfigMap")

	pod := dep.Spec.Template.Spec
	c := pod.Containers[0]
	g.Expect(c.Image).To(Equal(pacerv1.DefaultImage))
	g.Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: "DATABASE_URL", ValueFrom: &corev1.EnvVarSource{
		SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "db"}, Key: "url"},
	}}))
	g.Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
	g.Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
	g.Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
	g.Expect(*c.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
	g.Expect(c.SecurityContext.Capabilities.Drop).To(ConsistOf(corev1.Capability("ALL")))
	g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
	g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(c.Resources.Requests).NotTo(BeEmpty())

	g.Eventually(func(g Gomega) {
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		g.Expect(cur.Status.ObservedGeneration).To(Equal(cur.Generation))
		g.Expect(cur.Status.Effective).NotTo(BeNil())
		g.Expect(cur.Status.Effective.ConfigGeneration).To(Equal(int64(1)))
		g.Expect(cur.Status.Effective.MaxInFlight).To(Equal(int32(64)))
		g.Expect(cur.Status.Selector).To(Equal("app.kubernetes.io/instance=users,app.kubernetes.io/name=pacer-api"))
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
		// envtest runs no kube-controller-manager: no pods ever become ready.
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionAvailable).Status).To(Equal(metav1.ConditionFalse))
		// Recommend mode, and no pod to observe.
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionTuned).Status).To(Equal(metav1.ConditionUnknown))
	}, eventually, poll).Should(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(reasons(eventsAbout(g, s.client, ns, "users"))).To(ContainElement("Created"))
	}, eventually, poll).Should(Succeed())
}

func TestLiveChangeUpdatesConfigMapWithoutRollingPods(t *testing.T) {
	s, g, ts := startCase(t, "live")
	ns := ts.Namespace

	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "live-config"}}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "live"}}
	g.Eventually(get(s.client, cm), eventually, poll).Should(Succeed())
	g.Eventually(get(s.client, dep), eventually, poll).Should(Succeed())
	template := dep.Spec.Template.DeepCopy()

	patchSpec(t, s.client, ts, func(ts *pacerv1.TunedService) {
		ts.Spec.Workers.MaxInFlight = 12
		ts.Spec.Database.Pool.MaxConns = 5
		ts.Spec.Cache.MaxEntries = ptr.To[int32](500)
		ts.Spec.RateLimit.RequestsPerSecond = ptr.To[int32](50)
	})

	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, cm)()).To(Succeed())
		c, err := config.Parse([]byte(cm.Data[render.ConfigKey]))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Generation).To(Equal(int64(2)))
		g.Expect(c.Workers.MaxInFlight).To(Equal(12))
		g.Expect(c.Database.MaxConns).To(Equal(int32(5)))
		g.Expect(c.Cache.MaxEntries).To(Equal(500))
		g.Expect(c.RateLimit.RequestsPerSecond).To(Equal(50.0))
		g.Expect(c.RateLimit.Burst).To(Equal(50))
	}, eventually, poll).Should(Succeed())

	g.Expect(get(s.client, dep)()).To(Succeed())
	if diff := cmp.Diff(template, &dep.Spec.Template); diff != "" {
		t.Errorf("a live change altered the pod template, which rolls the pods (-before +after):\n%s", diff)
	}
	g.Eventually(func(g Gomega) {
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		g.Expect(cur.Status.Effective.ConfigGeneration).To(Equal(int64(2)))
		g.Expect(cur.Status.Effective.PoolMaxConns).To(Equal(int32(5)))
	}, eventually, poll).Should(Succeed())
}

func TestRestartChangesRollThePods(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	ts := newTunedService(ns, "roll")
	secret := newSecret(ns, "db")
	create(t, s.client, secret, ts)

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "roll"}}
	g.Eventually(get(s.client, dep), eventually, poll).Should(Succeed())
	restartHash := dep.Spec.Template.Annotations[render.AnnotationRestartHash]
	g.Expect(restartHash).NotTo(BeEmpty())

	// A new image is in the pod template itself.
	patchSpec(t, s.client, ts, func(ts *pacerv1.TunedService) { ts.Spec.Image = "example.com/pacer-api:v2" })
	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, dep)()).To(Succeed())
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal("example.com/pacer-api:v2"))
	}, eventually, poll).Should(Succeed())

	// A rotated Secret reaches pods only through a restart.
	secret.StringData = map[string]string{"url": "postgres://pacer:rotated@db.example:5432/pacer"}
	g.Expect(s.client.Update(context.Background(), secret)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, dep)()).To(Succeed())
		g.Expect(dep.Spec.Template.Annotations[render.AnnotationRestartHash]).NotTo(Equal(restartHash))
	}, eventually, poll).Should(Succeed())
	g.Expect(dep.Spec.Template.Annotations[render.AnnotationRestartHash]).NotTo(ContainSubstring("rotated"))
}

func TestHandEditsAreUndoneAndDeletedChildrenReturn(t *testing.T) {
	s, g, ts := startCase(t, "drift")
	ns := ts.Namespace
	ctx := context.Background()

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift"}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift-config"}}
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift"}}
	g.Eventually(get(s.client, dep), eventually, poll).Should(Succeed())
	g.Eventually(get(s.client, cm), eventually, poll).Should(Succeed())
	g.Eventually(get(s.client, svc), eventually, poll).Should(Succeed())
	original := cm.Data[render.ConfigKey]

	// Someone edits owned fields by hand, with another field manager.
	dep.Spec.Replicas = ptr.To[int32](7)
	dep.Spec.Template.Spec.Containers[0].Image = "evil.example/other:latest"
	g.Expect(s.client.Update(ctx, dep)).To(Succeed())
	cm.Data[render.ConfigKey] = "workers: {maxInFlight: 1}\n"
	g.Expect(s.client.Update(ctx, cm)).To(Succeed())
	g.Expect(s.client.Delete(ctx, svc)).To(Succeed())

	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, dep)()).To(Succeed())
		g.Expect(*dep.Spec.Replicas).To(Equal(int32(1)))
		g.Expect(dep.Spec.Template.Spec.Containers[0].Image).To(Equal(pacerv1.DefaultImage))
	}, eventually, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, cm)()).To(Succeed())
		// Same content as before the edit; the generation moved on, since
		// pods may have read the edited file.
		c, err := config.Parse([]byte(cm.Data[render.ConfigKey]))
		g.Expect(err).NotTo(HaveOccurred())
		o, err := config.Parse([]byte(original))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(c.Workers).To(Equal(o.Workers))
	}, eventually, poll).Should(Succeed())
	g.Eventually(get(s.client, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "drift"}}),
		eventually, poll).Should(Succeed())
}

func TestSteadyStateWritesNothing(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	// Tuning observes every 5s: an unchanged observation must not be
	// written again either.
	ts := newTunedService(ns, "steady", withReplicas(3), func(ts *pacerv1.TunedService) {
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
	})
	create(t, s.client, newSecret(ns, "db"), ts)

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "steady"}}
	g.Eventually(get(s.client, pdb), eventually, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
	}, eventually, poll).Should(Succeed())

	// Let the first passes settle, then watch through two resync periods,
	// each of which re-runs the reconcile of every child.
	time.Sleep(2 * time.Second)
	before := s.writes.In(ns)
	passes := reconcileCount(t)
	versions := childVersions(t, s.client, ns, "steady")

	g.Consistently(func() int { return s.writes.In(ns) }, 2*syncPeriod+time.Second, poll).
		Should(Equal(before), "steady state wrote to the API server")
	g.Expect(reconcileCount(t)).To(BeNumerically(">", passes), "no pass ran: the test proved nothing")
	g.Expect(childVersions(t, s.client, ns, "steady")).To(Equal(versions))
}

func TestRenderedPodsPassRestrictedPodSecurity(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "restricted-",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	if err := s.client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	ts := newTunedService(ns.Name, "secure", func(ts *pacerv1.TunedService) {
		ts.Spec.Cache.Redis = &pacerv1.RedisSpec{URLSecretRef: pacerv1.SecretKeyRef{Name: "redis", Key: "url"}}
		ts.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}
	})
	tpl := render.Deployment(ts, render.DeploymentInput{Replicas: 1, PoolMaxConns: 16, RestartHash: "x"}).Spec.Template
	pod := &corev1.Pod{}
	raw, err := json.Marshal(tpl)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, pod); err != nil {
		t.Fatal(err)
	}
	pod.Namespace, pod.Name = ns.Name, "secure-pod"
	// The PodSecurity admission plugin of the real API server judges it.
	if err := s.client.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Fatalf("a rendered pod is refused under restricted Pod Security: %v", err)
	}

	// And the check is live: a privileged pod is refused in that namespace.
	bad := pod.DeepCopy()
	bad.Spec.Containers[0].SecurityContext.Privileged = ptr.To(true)
	if err := s.client.Create(ctx, bad, client.DryRunAll); err == nil {
		t.Fatal("the namespace does not enforce restricted Pod Security: the test proves nothing")
	}
}

func TestMissingSecretIsReportedThenRecovered(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	ts := newTunedService(ns, "nosecret")
	create(t, s.client, ts)

	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("SecretNotFound"))
		g.Expect(c.Message).To(ContainSubstring(`Secret "db"`))
		g.Expect(c.Message).To(ContainSubstring("spec.database.urlSecretRef"))
	}, eventually, poll).Should(Succeed())
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nosecret"}}
	g.Expect(get(s.client, dep)()).To(Satisfy(apierrors.IsNotFound), "no pods without their Secret")

	create(t, s.client, newSecret(ns, "db"))
	g.Eventually(get(s.client, dep), eventually, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
	}, eventually, poll).Should(Succeed())
}

func TestForeignObjectIsLeftAloneAndReported(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	foreign := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken", Labels: map[string]string{"team": "other"}},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "other"},
			Ports:    []corev1.ServicePort{{Name: "web", Port: 8000}},
		},
	}
	create(t, s.client, foreign, newSecret(ns, "db"))
	before := foreign.DeepCopy()
	ts := newTunedService(ns, "taken")
	create(t, s.client, ts)

	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionDegraded)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Reason).To(Equal("NotOwned"))
		g.Expect(c.Message).To(ContainSubstring("Service taken"))
	}, eventually, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		var warnings []string
		for _, e := range eventsAbout(g, s.client, ns, "taken") {
			if e.Type == corev1.EventTypeWarning {
				warnings = append(warnings, e.Reason)
			}
		}
		g.Expect(warnings).To(ContainElement("NotOwned"))
	}, eventually, poll).Should(Succeed())

	// The other children are still made; the foreign Service is untouched.
	g.Eventually(get(s.client, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "taken"}}),
		eventually, poll).Should(Succeed())
	after := &corev1.Service{}
	g.Expect(s.client.Get(context.Background(), client.ObjectKeyFromObject(foreign), after)).To(Succeed())
	g.Expect(after.OwnerReferences).To(BeEmpty())
	g.Expect(after.Spec.Selector).To(Equal(before.Spec.Selector))
	g.Expect(after.Labels).To(Equal(before.Labels))
	g.Expect(after.ResourceVersion).To(Equal(before.ResourceVersion))
}

func TestScaleSubresourceDrivesReplicasAndBudget(t *testing.T) {
	s, g, ts := startCase(t, "scaled")
	ns := ts.Namespace
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scaled"}}
	g.Eventually(get(s.client, dep), eventually, poll).Should(Succeed())

	// What `kubectl scale tsvc/scaled --replicas=3` does. The selector
	// comes from status, written at the end of the first pass. A status
	// write between the read and the update is a conflict, which kubectl
	// and the HPA answer by reading again; so does this.
	g.Eventually(func(g Gomega) {
		scale := &autoscalingv1.Scale{}
		g.Expect(s.client.SubResource("scale").Get(context.Background(), ts, scale)).To(Succeed())
		g.Expect(scale.Status.Selector).To(ContainSubstring("app.kubernetes.io/instance=scaled"))
		scale.Spec.Replicas = 3
		g.Expect(s.client.SubResource("scale").Update(context.Background(), ts, client.WithSubResourceBody(scale))).To(Succeed())
	}, eventually, poll).Should(Succeed())

	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "scaled"}}
	g.Eventually(func(g Gomega) {
		g.Expect(get(s.client, dep)()).To(Succeed())
		g.Expect(*dep.Spec.Replicas).To(Equal(int32(3)))
		g.Expect(get(s.client, pdb)()).To(Succeed())
		g.Expect(pdb.Spec.MaxUnavailable.IntValue()).To(Equal(1))
	}, eventually, poll).Should(Succeed())

	patchSpec(t, s.client, ts, func(ts *pacerv1.TunedService) { ts.Spec.Replicas = ptr.To[int32](1) })
	g.Eventually(get(s.client, pdb), eventually, poll).Should(Satisfy(apierrors.IsNotFound))
}

func TestNoSecretValueInStatusOrEvents(t *testing.T) {
	s, g, ts := startCase(t, "secretive")
	ns := ts.Namespace
	g.Eventually(func(g Gomega) {
		g.Expect(condition(g, s.client, ts, pacerv1.ConditionDegraded).Status).To(Equal(metav1.ConditionFalse))
	}, eventually, poll).Should(Succeed())

	cur := &pacerv1.TunedService{}
	g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
	g.Expect(toJSON(t, cur.Status)).NotTo(ContainSubstring("s3cret"))
	for _, e := range eventsAbout(g, s.client, ns, "secretive") {
		g.Expect(e.Note).NotTo(ContainSubstring("s3cret"))
	}
}

// patchSpec changes ts's spec with a merge patch, retrying on conflict.
func patchSpec(t *testing.T, c client.Client, ts *pacerv1.TunedService, change func(*pacerv1.TunedService)) {
	t.Helper()
	cur := &pacerv1.TunedService{}
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(ts), cur); err != nil {
		t.Fatalf("get TunedService: %v", err)
	}
	base := cur.DeepCopy()
	change(cur)
	if err := c.Patch(context.Background(), cur, client.MergeFrom(base)); err != nil {
		t.Fatalf("patch TunedService: %v", err)
	}
}

func withKey(into, from *pacerv1.TunedService) *pacerv1.TunedService {
	into.Namespace, into.Name = from.Namespace, from.Name
	return into
}

// childVersions returns the resourceVersions of ts's children.
func childVersions(t *testing.T, c client.Client, ns, name string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, obj := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name + "-config"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
		&pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}},
	} {
		if err := get(c, obj)(); err != nil {
			t.Fatalf("get %T: %v", obj, err)
		}
		out[strings.TrimPrefix(kindOf(obj), "*")] = obj.GetResourceVersion()
	}
	return out
}
