package controllers

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
)

// seriesOf lists the series of c whose namespace label is ns, as
// "label=value,... value", sorted: the collectors are process-wide, so each
// test looks only at its own namespace.
func seriesOf(t testing.TB, c prometheus.Collector, ns string) []string {
	t.Helper()
	ch := make(chan prometheus.Metric, 1024)
	c.Collect(ch)
	close(ch)
	var out []string
	for m := range ch {
		pb := &dto.Metric{}
		if err := m.Write(pb); err != nil {
			t.Fatal(err)
		}
		var labels []string
		keep := false
		for _, l := range pb.GetLabel() {
			if l.GetName() == "namespace" {
				keep = l.GetValue() == ns
				continue
			}
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		if keep {
			v := pb.GetGauge().GetValue() + pb.GetCounter().GetValue()
			out = append(out, fmt.Sprintf("%s %g", strings.Join(labels, ","), v))
		}
	}
	sort.Strings(out)
	return out
}

func metricsTS(ns, name string) *pacerv1.TunedService {
	return &pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
}

// A condition whose reason changes replaces its series: an alert on
// reason="Limited" stops when the reason moves on, and a TunedService has
// one series per condition type however often its reasons change.
func TestConditionGaugeKeepsOneSeriesPerType(t *testing.T) {
	ts := metricsTS("cond", "api")
	ts.Status.Conditions = []metav1.Condition{
		{Type: pacerv1.ConditionAvailable, Status: metav1.ConditionTrue, Reason: "PodsReady"},
		{Type: pacerv1.ConditionTuned, Status: metav1.ConditionTrue, Reason: "Applied"},
	}
	setConditionGauges(ts)
	ts.Status.Conditions[1] = metav1.Condition{Type: pacerv1.ConditionTuned, Status: metav1.ConditionFalse, Reason: "Limited"}
	setConditionGauges(ts)
	want := []string{
		"name=api,reason=Limited,status=False,type=Tuned 1",
		"name=api,reason=PodsReady,status=True,type=Available 1",
	}
	if diff := cmp.Diff(want, seriesOf(t, serviceCondition, "cond")); diff != "" {
		t.Errorf("condition series (-want +got):\n%s", diff)
	}
}

// The worst case counts every pod the Deployment may have (surging and
// terminating ones too) with its pool and its health pool: replicas ×
// poolMaxConns alone under-counts what the database sees.
func TestConnectionGaugesCountSurgingPodsAndTheHealthPool(t *testing.T) {
	ts := metricsTS("conns", "api")
	ts.Spec.Database.MaxTotalConnections = ptr.To[int32](60)
	s := pacerv1.Settings{Replicas: 3, PoolMaxConns: 10}
	d := &appsv1.Deployment{Status: appsv1.DeploymentStatus{Replicas: 4, TerminatingReplicas: ptr.To[int32](1)}}
	setConnectionGauges(ts, s, d)
	want := []string{fmt.Sprintf("name=api %d", tuning.WorstCaseConnections(5, 10))}
	if diff := cmp.Diff(want, seriesOf(t, connectionsWorstCase, "conns")); diff != "" {
		t.Errorf("worst case (-want +got):\n%s", diff)
	}
	if want[0] != "name=api 55" {
		t.Errorf("5 pods × (10 + 1 health connection) = 55, got %s", want[0])
	}
	if diff := cmp.Diff([]string{"name=api 60"}, seriesOf(t, connectionBudget, "conns")); diff != "" {
		t.Errorf("budget (-want +got):\n%s", diff)
	}

	ts.Spec.Database.MaxTotalConnections = nil // the budget removed from the spec
	setConnectionGauges(ts, s, nil)
	if got := seriesOf(t, connectionBudget, "conns"); len(got) != 0 {
		t.Errorf("budget series after the budget was removed: %v", got)
	}
	if diff := cmp.Diff([]string{"name=api 33"}, seriesOf(t, connectionsWorstCase, "conns")); diff != "" {
		t.Errorf("worst case without a Deployment (-want +got):\n%s", diff)
	}
}

// Reverts are counted apart from the tuner's own moves, so flapping can be
// alerted on; a change from before the source field counts as the tuner's.
func TestDecisionsAreCountedBySource(t *testing.T) {
	ts := metricsTS("decisions", "api")
	countDecision(ts, pacerv1.Change{Setting: "maxInFlight", From: 8, To: 12})
	countDecision(ts, pacerv1.Change{Setting: "maxInFlight", From: 12, To: 8, Source: pacerv1.ChangeByRevert})
	countDecision(ts, pacerv1.Change{Setting: "poolMaxConns", From: 12, To: 10, Source: pacerv1.ChangeByBudget})
	want := []string{
		"direction=down,name=api,setting=maxInFlight,source=Revert 1",
		"direction=down,name=api,setting=poolMaxConns,source=Budget 1",
		"direction=up,name=api,setting=maxInFlight,source=Tuner 1",
	}
	if diff := cmp.Diff(want, seriesOf(t, tuningDecisions, "decisions")); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
}

// A window without a p99 removes the last one: a stale p99 would keep the
// "objective missed" alert firing on old news.
func TestObservedP99IsDroppedWhenAWindowHasNone(t *testing.T) {
	ts := metricsTS("p99", "api")
	setObservationGauges(ts, tuning.Window{Sufficient: true, P99: 150_000_000}, 100_000_000)
	if diff := cmp.Diff([]string{"name=api 0.15"}, seriesOf(t, tuningObservedP99, "p99")); diff != "" {
		t.Errorf("observed (-want +got):\n%s", diff)
	}
	setObservationGauges(ts, tuning.Window{Sufficient: false, Reason: "pods on an old config"}, 100_000_000)
	if got := seriesOf(t, tuningObservedP99, "p99"); len(got) != 0 {
		t.Errorf("observed p99 kept from an old window: %v", got)
	}
	if diff := cmp.Diff([]string{"name=api 0.1"}, seriesOf(t, tuningObjectiveP99, "p99")); diff != "" {
		t.Errorf("objective (-want +got):\n%s", diff)
	}
}

// Deleting a TunedService deletes every series it had, and only its own.
func TestForgetServiceDropsEverySeriesOfThatServiceOnly(t *testing.T) {
	for _, name := range []string{"gone", "stays"} {
		ts := metricsTS("forget", name)
		ts.Spec.Database.MaxTotalConnections = ptr.To[int32](40)
		ts.Status.Conditions = []metav1.Condition{{Type: pacerv1.ConditionTuned, Status: metav1.ConditionTrue, Reason: "Applied"}}
		setSettingGauges(ts, pacerv1.Settings{Replicas: 2, PoolMaxConns: 4})
		setConnectionGauges(ts, pacerv1.Settings{Replicas: 2, PoolMaxConns: 4}, nil)
		setObservationGauges(ts, tuning.Window{Sufficient: true, P99: 1_000_000}, 100_000_000)
		setConditionGauges(ts)
		setConfigGeneration(ts, 3)
		countDecision(ts, pacerv1.Change{Setting: "replicas", From: 1, To: 2})
	}
	forgetService(types.NamespacedName{Namespace: "forget", Name: "gone"})
	for _, c := range TuningCollectors {
		got := seriesOf(t, c, "forget")
		if len(got) == 0 {
			t.Errorf("the other TunedService lost its series too")
		}
		for _, s := range got {
			if strings.HasPrefix(s, "name=gone") {
				t.Errorf("series of a deleted TunedService kept: %s", s)
			}
		}
	}
}

// The reconciler exports the conditions it writes, and the series go with
// the TunedService.
func TestConditionSeriesFollowStatusAndDeletion(t *testing.T) {
	s, g, ts := startCase(t, "metrics")
	g.Eventually(func(g Gomega) {
		c := condition(g, s.client, ts, pacerv1.ConditionAvailable)
		want := fmt.Sprintf("name=metrics,reason=%s,status=%s,type=Available 1", c.Reason, c.Status)
		g.Expect(seriesOf(t, serviceCondition, ts.Namespace)).To(ContainElement(want))
		g.Expect(seriesOf(t, connectionsWorstCase, ts.Namespace)).To(HaveLen(1))
	}, eventually, poll).Should(Succeed())

	g.Expect(s.client.Delete(context.Background(), ts)).To(Succeed())
	g.Eventually(func() error { return s.client.Get(context.Background(), client.ObjectKeyFromObject(ts), ts) },
		eventually, poll).ShouldNot(Succeed())
	g.Eventually(func(g Gomega) {
		for _, c := range TuningCollectors {
			g.Expect(seriesOf(t, c, ts.Namespace)).To(BeEmpty())
		}
	}, eventually, poll).Should(Succeed())
}
