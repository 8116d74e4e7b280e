package budget

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

func TestGaugesFollowTheDivision(t *testing.T) {
	b := &pacerv1.ConnectionBudget{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "db"},
		Spec:       pacerv1.ConnectionBudgetSpec{MaxConnections: 100, Reserved: 10},
		Status: pacerv1.ConnectionBudgetStatus{Members: []pacerv1.BudgetMember{
			{Name: "a", Guaranteed: 10, Target: 50, Allocated: 40, WorstCaseInUse: 35},
			{Name: "b", Guaranteed: 10, Target: 40, Allocated: 40, WorstCaseInUse: 20},
		}},
	}
	setGauges(b)
	if got := testutil.ToFloat64(budgetRoom.WithLabelValues("ns", "db")); got != 90 {
		t.Errorf("room = %v, want 90", got)
	}
	if got := testutil.ToFloat64(budgetMember.WithLabelValues("ns", "db", "a", "worst_case")); got != 35 {
		t.Errorf("a's worst case = %v, want 35", got)
	}
	b.Status.Members = b.Status.Members[1:] // a left
	setGauges(b)
	if n := testutil.CollectAndCount(budgetMember); n != 4 {
		t.Errorf("%d member series after a left, want b's 4", n)
	}
	forgetGauges("ns", "db")
	if n := testutil.CollectAndCount(budgetMember) + testutil.CollectAndCount(budgetRoom); n != 0 {
		t.Errorf("%d series after the budget was deleted, want 0", n)
	}
}
