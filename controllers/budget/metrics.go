package budget

import (
	"github.com/prometheus/client_golang/prometheus"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// The division, on the manager's metrics endpoint: plotted stacked under
// the room, each member's allocation and what its pods may hold show how
// the room changes hands.
var (
	budgetRoom = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_connection_budget_room",
		Help: "A ConnectionBudget's room: maxConnections less reserved.",
	}, []string{"namespace", "budget"})
	budgetMember = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "pacer_connection_budget_member_connections",
		Help: "A ConnectionBudget member's connections: guaranteed, target, allocated, or worst_case (what its pods may hold now).",
	}, []string{"namespace", "budget", "member", "kind"})
)

func init() {
	crmetrics.Registry.MustRegister(budgetRoom, budgetMember)
}

// setGauges shows b's division; members no longer listed lose their series.
func setGauges(b *pacerv1.ConnectionBudget) {
	forgetGauges(b.Namespace, b.Name)
	budgetRoom.WithLabelValues(b.Namespace, b.Name).Set(float64(int64(b.Spec.MaxConnections) - int64(b.Spec.Reserved)))
	for _, m := range b.Status.Members {
		for kind, v := range map[string]int32{
			"guaranteed": m.Guaranteed, "target": m.Target, "allocated": m.Allocated, "worst_case": m.WorstCaseInUse,
		} {
			budgetMember.WithLabelValues(b.Namespace, b.Name, m.Name, kind).Set(float64(v))
		}
	}
}

func forgetGauges(namespace, name string) {
	labels := prometheus.Labels{"namespace": namespace, "budget": name}
	budgetRoom.DeletePartialMatch(labels)
	budgetMember.DeletePartialMatch(labels)
}
