package controllers

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/internal/testenv"
)

// What a budget counts for a member against what PostgreSQL sees: a real
// pacer-api under load, its readiness probed as a kubelet would, and
// pg_stat_activity sampled for its database. The pod holds its full
// request pool and its health connection, and never more than the
// budget counts for it.
func TestConnectionBudgetCountsWhatPostgreSQLSees(t *testing.T) {
	s, g, ts := startCase(t, "counted", func(ts *pacerv1.TunedService) {
		ts.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("16")}}
		ts.Spec.Workers = pacerv1.WorkersSpec{MaxInFlight: 32}
		ts.Spec.Database.Pool = pacerv1.PoolSpec{MinConns: ptr.To[int32](1), MaxConns: 4}
		// 1 pod × (4 + 1) = 5: what the budget must count for it.
		ts.Spec.Database.BudgetRef = &pacerv1.BudgetRef{Name: "db", Min: 5}
		ts.Spec.Tuning.Mode = pacerv1.TuningDisabled
	})
	b := newBudget(ts.Namespace, "db", 20, 0)
	create(t, s.client, b)

	pod := runPod(t, s, ts)
	cfg, err := pgx.ParseConfig(pod.dsn)
	g.Expect(err).NotTo(HaveOccurred())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, testenv.DatabaseURL(t))
	g.Expect(err).NotTo(HaveOccurred())
	defer admin.Close(ctx)

	pod.load(t, 16)
	readyz := "http://" + pod.app.AdminAddr() + "/readyz"
	most := 0
	for end := time.Now().Add(6 * time.Second); time.Now().Before(end); {
		if resp, err := http.Get(readyz); err == nil { // the kubelet's probe
			resp.Body.Close()
		}
		var n int
		g.Expect(admin.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", cfg.Database).Scan(&n)).To(Succeed())
		most = max(most, n)
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("pg_stat_activity: at most %d connections to %s", most, cfg.Database)

	var m pacerv1.BudgetMember
	g.Eventually(func(g Gomega) {
		m = share(g, s, b, "counted")
		g.Expect(m.WorstCaseInUse).To(BeNumerically(">", 0))
	}, eventually, poll).Should(Succeed())
	g.Expect(most).To(Equal(5), "the pool (4) and the health pool (1) were all open under load")
	g.Expect(int32(most)).To(BeNumerically("<=", m.WorstCaseInUse), "PostgreSQL saw more than the budget counts")
	g.Expect(m.WorstCaseInUse).To(BeNumerically("<=", m.Allocated))
}
