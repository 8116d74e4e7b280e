package controllers

import (
	"context"
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
	"github.com/pacer-dev/pacer/controllers/tuning"
	"github.com/pacer-dev/pacer/service/config"
)

// ConnectionBudgets against a real API server: the budget controller
// divides, each member's reconciler reads its allocation. There is no
// kubelet here: what a member's tuner wants is written to its
// status.recommendation by the test (in Recommend mode with no ready pod,
// nothing else writes it), and its pods are Pod objects the test creates
// and deletes.

func newBudget(ns, name string, maxConns, reserved int32) *pacerv1.ConnectionBudget {
	return &pacerv1.ConnectionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       pacerv1.ConnectionBudgetSpec{MaxConnections: maxConns, Reserved: reserved},
	}
}

// member joins budget with min and weight, as a Recommend-mode service of
// 2 replicas × pool 4 tuned within 1–10 replicas and pool 2–8.
func member(budget string, min, weight int32) tsOption {
	return func(ts *pacerv1.TunedService) {
		ts.Spec.Replicas = ptr.To[int32](2)
		ts.Spec.Database.Pool.MaxConns = 4
		ts.Spec.Database.BudgetRef = &pacerv1.BudgetRef{Name: budget, Min: min, Weight: weight}
		ts.Spec.Tuning.Mode = pacerv1.TuningRecommend
		ts.Spec.Tuning.Bounds = pacerv1.TuningBounds{
			Replicas:     &pacerv1.Int32Range{Min: 1, Max: 10},
			PoolMaxConns: &pacerv1.Int32Range{Min: 2, Max: 8},
		}
	}
}

// wants writes what the member's tuner recommends, as the tuner would.
func wants(t *testing.T, s *testSuite, ts *pacerv1.TunedService, replicas, pool int32) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func() error {
		cur := &pacerv1.TunedService{}
		if err := s.client.Get(context.Background(), client.ObjectKeyFromObject(ts), cur); err != nil {
			return err
		}
		if cur.Status.Effective == nil {
			return fmt.Errorf("no settings in effect yet")
		}
		before := cur.DeepCopy()
		rec := cur.Status.Effective.Settings
		rec.Replicas, rec.PoolMaxConns = replicas, pool
		cur.Status.Recommendation = &pacerv1.Recommendation{Time: metav1.Now(), Settings: rec}
		return s.client.Status().Patch(context.Background(), cur, client.MergeFrom(before))
	}, eventually, poll).Should(Succeed())
}

// podsOf creates n Pod objects of ts (none ready: they only hold connections).
func podsOf(t *testing.T, s *testSuite, ts *pacerv1.TunedService, n int) []*corev1.Pod {
	t.Helper()
	var out []*corev1.Pod
	for i := range n {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: ts.Namespace, Name: fmt.Sprintf("%s-held-%d", ts.Name, i), Labels: render.Labels(ts)},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: render.ContainerName, Image: "pacer-api"}}},
		}
		create(t, s.client, p)
		out = append(out, p)
	}
	return out
}

func budgetNow(g Gomega, s *testSuite, b *pacerv1.ConnectionBudget) *pacerv1.ConnectionBudget {
	cur := &pacerv1.ConnectionBudget{}
	g.Expect(s.client.Get(context.Background(), client.ObjectKeyFromObject(b), cur)).To(Succeed())
	return cur
}

// share is a member's entry in its budget's status.
func share(g Gomega, s *testSuite, b *pacerv1.ConnectionBudget, name string) pacerv1.BudgetMember {
	cur := &pacerv1.ConnectionBudget{}
	g.Expect(s.client.Get(context.Background(), client.ObjectKeyFromObject(b), cur)).To(Succeed())
	for _, m := range cur.Status.Members {
		if m.Name == name {
			return m
		}
	}
	g.Expect(cur.Status.Members).To(ContainElement(HaveField("Name", name)))
	return pacerv1.BudgetMember{}
}

func budgetCondition(g Gomega, s *testSuite, b *pacerv1.ConnectionBudget, t string) metav1.Condition {
	cur := &pacerv1.ConnectionBudget{}
	g.Expect(s.client.Get(context.Background(), client.ObjectKeyFromObject(b), cur)).To(Succeed())
	c := meta.FindStatusCondition(cur.Status.Conditions, t)
	g.Expect(c).NotTo(BeNil(), "condition %s", t)
	return *c
}

func TestConnectionBudgetLendsAndTakesBack(t *testing.T) {
	s, g, a := startCase(t, "a", member("shared", 10, 1))
	ns := a.Namespace
	b := newBudget(ns, "shared", 100, 10) // room 90
	create(t, s.client, b)
	bs := newTunedService(ns, "b", member("shared", 10, 1))
	create(t, s.client, bs)

	// Each gets what its settings use (2 × (4+1) = 10) and a pod more: 15.
	// The rest stays free.
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "a")).To(And(HaveField("Allocated", int32(15)), HaveField("Guaranteed", int32(10)), HaveField("WorstCaseInUse", int32(10))))
		g.Expect(share(g, s, b, "b")).To(HaveField("Allocated", int32(15)))
		cur := budgetNow(g, s, b)
		g.Expect(cur.Status.Free).To(Equal(int32(60)))
		g.Expect(cur.Status.MemberCount).To(Equal(int32(2)))
	}, eventually, poll).Should(Succeed())

	// The member's reconciler plans within its allocation: its rollout
	// surges one pod (10 + 5 ≤ 15), not the quarter an unbounded one may.
	g.Eventually(func(g Gomega) {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "a"}}
		g.Expect(get(s.client, d)()).To(Succeed())
		g.Expect(d.Spec.Strategy.RollingUpdate.MaxSurge.String()).To(Equal("1"))
	}, eventually, poll).Should(Succeed())

	// a's tuner wants 10 × pool 8 = 90: it borrows what b leaves unused.
	wants(t, s, a, 10, 8)
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "a")).To(HaveField("Allocated", int32(75)))
		g.Expect(share(g, s, b, "b")).To(HaveField("Allocated", int32(15)))
	}, eventually, poll).Should(Succeed())

	// a's pods now hold 12 × 5 = 60.
	held := podsOf(t, s, a, 12)
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "a")).To(And(HaveField("WorstCaseInUse", int32(60)), HaveField("Pods", int32(12))))
	}, eventually, poll).Should(Succeed())

	// b wants as much: a is cut to its half at once, but b is granted
	// only what a's pods do not hold: 90 − 60 = 30, not 45.
	wants(t, s, bs, 10, 8)
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "a")).To(HaveField("Allocated", int32(45)))
		m := share(g, s, b, "b")
		g.Expect(m.Allocated).To(Equal(int32(30)))
		g.Expect(m.Target).To(Equal(int32(45)))
		g.Expect(m.Message).To(ContainSubstring("a (60 held)"))
		g.Expect(budgetCondition(g, s, b, pacerv1.ConditionReady).Reason).To(Equal("GrantsWaitOnCuts"))
	}, eventually, poll).Should(Succeed())

	// a's pods come down to 9 × 5 = 45: the cut is seen, b gets its half.
	for _, p := range held[9:] {
		g.Expect(s.client.Delete(context.Background(), p)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "b")).To(HaveField("Allocated", int32(45)))
		g.Expect(budgetCondition(g, s, b, pacerv1.ConditionReady).Reason).To(Equal("Divided"))
	}, eventually, poll).Should(Succeed())

	// The room changing hands is told on the budget.
	g.Eventually(func(g Gomega) {
		evs := eventsAbout(g, s.client, ns, "shared")
		g.Expect(reasons(evs)).To(ContainElements("Granted", "Cut"))
	}, eventually, poll).Should(Succeed())
}

func TestConnectionBudgetRefusesTheNewestWhenMinimumsDoNotFit(t *testing.T) {
	s, g, old := startCase(t, "old", member("small", 20, 1))
	ns := old.Namespace
	b := newBudget(ns, "small", 30, 0)
	create(t, s.client, b)
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "old")).To(HaveField("State", pacerv1.MemberAdmitted))
	}, eventually, poll).Should(Succeed())

	late := newTunedService(ns, "late", member("small", 20, 1))
	create(t, s.client, late)
	g.Eventually(func(g Gomega) {
		m := share(g, s, b, "late")
		g.Expect(m.State).To(Equal(pacerv1.MemberRefused))
		g.Expect(m.Message).To(ContainSubstring("min 20 does not fit"))
		c := budgetCondition(g, s, b, pacerv1.ConditionOvercommitted)
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
		g.Expect(c.Message).To(ContainSubstring("late"))
		d := condition(g, s.client, late, pacerv1.ConditionDegraded)
		g.Expect(d.Reason).To(Equal("BudgetRefused"))
		g.Expect(reasons(eventsAbout(g, s.client, ns, "late"))).To(ContainElement("BudgetRefused"))
		g.Expect(reasons(eventsAbout(g, s.client, ns, "small"))).To(ContainElement("MemberRefused"))
	}, eventually, poll).Should(Succeed())
	// A refused service renders no pods.
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "late"}}
	g.Consistently(func() bool { return apierrors.IsNotFound(get(s.client, d)()) }, "2s", poll).Should(BeTrue())

	// The older member leaves: its room goes to the refused one.
	g.Expect(s.client.Delete(context.Background(), old)).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := budgetNow(g, s, b)
		g.Expect(cur.Status.Members).To(HaveLen(1))
		g.Expect(share(g, s, b, "late")).To(HaveField("State", pacerv1.MemberAdmitted))
		g.Expect(budgetCondition(g, s, b, pacerv1.ConditionOvercommitted).Status).To(Equal(metav1.ConditionFalse))
		g.Expect(get(s.client, d)()).To(Succeed())
	}, eventually, poll).Should(Succeed())
}

// A member that leaves keeps its pods' connections counted until they are gone.
func TestConnectionBudgetCountsALeavingMembersPods(t *testing.T) {
	s, g, gone := startCase(t, "gone", member("room", 10, 1))
	ns := gone.Namespace
	b := newBudget(ns, "room", 40, 0)
	create(t, s.client, b)
	stays := newTunedService(ns, "stays", member("room", 10, 1))
	create(t, s.client, stays)
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "gone")).To(HaveField("PodConnections", int32(5)))
	}, eventually, poll).Should(Succeed())
	pods := podsOf(t, s, gone, 4) // 4 × 5 = 20
	wants(t, s, stays, 10, 8)
	g.Eventually(func(g Gomega) {
		g.Expect(share(g, s, b, "gone")).To(HaveField("WorstCaseInUse", int32(20)))
	}, eventually, poll).Should(Succeed())

	g.Expect(s.client.Delete(context.Background(), gone)).To(Succeed())
	g.Eventually(func(g Gomega) {
		m := share(g, s, b, "gone")
		g.Expect(m.State).To(Equal(pacerv1.MemberLeaving))
		g.Expect(m.WorstCaseInUse).To(Equal(int32(20)))
		g.Expect(share(g, s, b, "stays")).To(HaveField("Allocated", int32(20)))
	}, eventually, poll).Should(Succeed())

	for _, p := range pods {
		g.Expect(s.client.Delete(context.Background(), p)).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		cur := budgetNow(g, s, b)
		g.Expect(cur.Status.Members).To(HaveLen(1))
		g.Expect(share(g, s, b, "stays")).To(HaveField("Allocated", int32(40)))
	}, eventually, poll).Should(Succeed())
}

func TestConnectionBudgetBadInput(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	g := NewWithT(t)
	ns := s.namespace(t)
	ctx := context.Background()

	// Refused by the API server.
	for name, obj := range map[string]client.Object{
		"reserved ≥ max": newBudget(ns, "tight", 10, 10),
		"budgetRef min above max": newTunedService(ns, "minmax", member("x", 20, 1), func(ts *pacerv1.TunedService) {
			ts.Spec.Database.BudgetRef.Max = ptr.To[int32](10)
		}),
		"weight below 1": newTunedService(ns, "weightless", member("x", 10, 1), func(ts *pacerv1.TunedService) {
			ts.Spec.Database.BudgetRef.Weight = -1
		}),
		// 10 replicas × (8 + 1) = 90 is the most its bounds use.
		"min above its bounds": newTunedService(ns, "greedy", member("x", 91, 1)),
		// 1 replica × (2 + 1) = 3 is the least it runs with.
		"min below its smallest pods": newTunedService(ns, "meagre", member("x", 2, 1)),
	} {
		err := s.client.Create(ctx, obj)
		g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", name, err)
	}

	// A budgetRef to a budget that does not exist: nothing rendered, and
	// status says why; the budget's creation lets it start.
	create(t, s.client, newSecret(ns, "db"))
	orphan := newTunedService(ns, "orphan", member("later", 10, 1))
	create(t, s.client, orphan)
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, orphan, pacerv1.ConditionDegraded)
		g.Expect(c.Reason).To(Equal("BudgetNotFound"))
		g.Expect(c.Message).To(ContainSubstring(`"later"`))
	}, eventually, poll).Should(Succeed())
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "orphan"}}
	g.Expect(apierrors.IsNotFound(get(s.client, d)())).To(BeTrue())

	later := newBudget(ns, "later", 50, 0)
	later.Spec.Database = &pacerv1.SecretKeyRef{Name: "db", Key: "url"}
	create(t, s.client, later)
	g.Eventually(get(s.client, d), eventually, poll).Should(Succeed())

	// The budget deleted: nothing new is rendered, the pods are left running.
	g.Expect(s.client.Delete(ctx, later)).To(Succeed())
	g.Eventually(func(g Gomega) {
		g.Expect(condition(g, s.client, orphan, pacerv1.ConditionDegraded).Reason).To(Equal("BudgetNotFound"))
	}, eventually, poll).Should(Succeed())
	g.Expect(get(s.client, d)()).To(Succeed())
	later = newBudget(ns, "later", 50, 0)
	later.Spec.Database = &pacerv1.SecretKeyRef{Name: "db", Key: "url"}
	create(t, s.client, later)

	// A second budget for the same database is refused, and so are its members.
	second := newBudget(ns, "second", 50, 0)
	second.Spec.Database = &pacerv1.SecretKeyRef{Name: "db", Key: "url"}
	create(t, s.client, second)
	other := newTunedService(ns, "other", member("second", 10, 1))
	create(t, s.client, other)
	g.Eventually(func(g Gomega) {
		c := budgetCondition(g, s, second, pacerv1.ConditionReady)
		g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(c.Reason).To(Equal("DuplicateDatabase"))
		g.Expect(c.Message).To(ContainSubstring(`"later"`))
		g.Expect(condition(g, s.client, other, pacerv1.ConditionDegraded).Reason).To(Equal("BudgetRefused"))
	}, eventually, poll).Should(Succeed())
}

// Each pod also holds its health connection: 3 pods at pool 4 hold 15, not
// 12. Granted 12, the member steps back toward the spec's pool of 4 only
// as far as 3 × (3 + 1) = 12, and renders that.
func TestABudgetMemberRendersWithinItsAllocationHealthPoolsIncluded(t *testing.T) {
	s, g, ts := startCase(t, "fitted", func(ts *pacerv1.TunedService) {
		ts.Spec.Replicas = ptr.To[int32](3)
		ts.Spec.Database.Pool.MaxConns = 4
		ts.Spec.Database.BudgetRef = &pacerv1.BudgetRef{Name: "tight", Min: 9}
		ts.Spec.Tuning.Mode = pacerv1.TuningDisabled
		ts.Spec.Tuning.Interval = &metav1.Duration{Duration: 5 * time.Second}
		ts.Spec.Tuning.Bounds = pacerv1.TuningBounds{PoolMaxConns: &pacerv1.Int32Range{Min: 2, Max: 4}}
	})
	b := newBudget(ts.Namespace, "tight", 12, 0)
	create(t, s.client, b)
	// Admitted, the member first gets its min, 9: the pool is cut to 2
	// (3 × 3 ≤ 9); granted 12, it steps back toward the spec's 4, capped
	// at 3 by the health connections.
	g.Eventually(func(g Gomega) {
		cur := &pacerv1.TunedService{}
		g.Expect(get(s.client, withKey(cur, ts))()).To(Succeed())
		var back bool
		for _, d := range cur.Status.History {
			for _, c := range d.Changes {
				back = back || (c.Setting == tuning.SettingPool && c.To == 3 && c.Source == pacerv1.ChangeToSpec)
			}
		}
		g.Expect(back).To(BeTrue(), "history: %+v", cur.Status.History)
	}, 60*time.Second, poll).Should(Succeed())
	g.Eventually(func(g Gomega) {
		m := share(g, s, b, "fitted")
		g.Expect(m.Allocated).To(Equal(int32(12)))
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ts.Namespace, Name: "fitted-config"}}
		g.Expect(get(s.client, cm)()).To(Succeed())
		cfg, err := config.Parse([]byte(cm.Data[render.ConfigKey]))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(cfg.Database.MaxConns).To(Equal(int32(3)))
		g.Expect(tuning.WorstCaseConnections(3, cfg.Database.MaxConns)).To(BeNumerically("<=", m.Allocated))
	}, eventually, poll).Should(Succeed())
}
