//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/hack/demo/scenario"
)

// testResourceMetrics checks the dev cluster's resource metrics pipeline
// (node agent /metrics/resource → metrics-server → metrics.k8s.io) on the
// TunedService's pods, which have just served load: the metrics API has
// nonzero CPU and memory for each, kubectl top lists them, and an
// autoscaling/v2 HPA on the TunedService's scale subresource sees their
// CPU utilization.
func testResourceMetrics(ctx context.Context, t *testing.T, r *scenario.Ready, assets string) {
	need(t, r.Cluster.ResourceMetrics == "ready", "the dev cluster's resource metrics (it said: "+r.Cluster.ResourceMetrics+")")
	c, ts := r.Cluster.Client, r.TS

	t.Run("the metrics API has nonzero CPU and memory for every pod", func(t *testing.T) {
		for _, p := range listPods(ctx, t, c, ts) {
			if !podReady(&p) {
				continue
			}
			pm := &unstructured.Unstructured{}
			pm.SetAPIVersion("metrics.k8s.io/v1beta1")
			pm.SetKind("PodMetrics")
			var last string
			deadline := time.Now().Add(90 * time.Second)
			for {
				err := c.Get(ctx, client.ObjectKeyFromObject(&p), pm)
				if err == nil {
					cpu, mem, err := podUsage(pm)
					if err == nil && !cpu.IsZero() && !mem.IsZero() {
						t.Logf("pod %s: cpu %s, memory %s", p.Name, cpu.String(), mem.String())
						break
					}
					last = fmt.Sprintf("cpu %s memory %s (%v)", cpu.String(), mem.String(), err)
				} else {
					last = err.Error()
				}
				if time.Now().After(deadline) {
					t.Fatalf("pod %s: no nonzero PodMetrics within 90s: %s", p.Name, last)
				}
				time.Sleep(time.Second)
			}
		}
	})

	t.Run("kubectl top pods lists them", func(t *testing.T) {
		kubectl := filepath.Join(assets, "kubectl")
		_, err := os.Stat(kubectl)
		need(t, err == nil, kubectl+" (hack/envtest-assets.sh kubectl)")
		out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", r.Cluster.Kubeconfig, "top", "pods", "-n", ts.Namespace, "--no-headers").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl top pods: %v\n%s", err, out)
		}
		t.Logf("kubectl top pods:\n%s", out)
		for _, p := range listPods(ctx, t, c, ts) {
			if podReady(&p) && !strings.Contains(string(out), p.Name) {
				t.Errorf("pod %s missing from kubectl top", p.Name)
			}
		}
	})

	t.Run("an HPA on the TunedService's scale subresource sees the pods' CPU utilization", func(t *testing.T) {
		cur := &pacerv1.TunedService{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(ts), cur); err != nil {
			t.Fatal(err)
		}
		// This TunedService is in Auto, so the tuner owns its replicas: the
		// HPA's bounds are its current spec.replicas, so it reads and
		// reports but never writes (an HPA and Auto must not both scale).
		n := ptr.Deref(cur.Spec.Replicas, 1)
		hpa := &autoscalingv2.HorizontalPodAutoscaler{
			ObjectMeta: metav1.ObjectMeta{Name: ts.Name, Namespace: ts.Namespace},
			Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
				ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
					APIVersion: pacerv1.GroupVersion.String(), Kind: "TunedService", Name: ts.Name,
				},
				MinReplicas: ptr.To(n), MaxReplicas: n,
				Metrics: []autoscalingv2.MetricSpec{{
					Type: autoscalingv2.ResourceMetricSourceType,
					Resource: &autoscalingv2.ResourceMetricSource{
						Name:   "cpu",
						Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](70)},
					},
				}},
			},
		}
		if err := c.Create(ctx, hpa); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Delete(context.WithoutCancel(ctx), hpa) }()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			if err := c.Get(ctx, client.ObjectKeyFromObject(hpa), hpa); err != nil {
				t.Fatal(err)
			}
			if m := hpa.Status.CurrentMetrics; len(m) > 0 && m[0].Resource != nil && m[0].Resource.Current.AverageUtilization != nil {
				t.Logf("HPA: current CPU utilization %d%% of requests over %d replicas", *m[0].Resource.Current.AverageUtilization, hpa.Status.CurrentReplicas)
				break
			}
			if time.Now().After(deadline) {
				var conds []string
				for _, cd := range hpa.Status.Conditions {
					conds = append(conds, fmt.Sprintf("%s=%s %s: %s", cd.Type, cd.Status, cd.Reason, cd.Message))
				}
				t.Fatalf("the HPA shows no CPU utilization after 2 minutes; conditions: %s", strings.Join(conds, "; "))
			}
			time.Sleep(time.Second)
		}
	})
}

// podUsage sums a PodMetrics' containers' CPU and memory.
func podUsage(pm *unstructured.Unstructured) (cpu, mem resource.Quantity, err error) {
	cs, _, _ := unstructured.NestedSlice(pm.Object, "containers")
	if len(cs) == 0 {
		return cpu, mem, fmt.Errorf("no containers in %s", pm.GetName())
	}
	for _, x := range cs {
		usage, _, _ := unstructured.NestedStringMap(x.(map[string]any), "usage")
		q, err := resource.ParseQuantity(usage["cpu"])
		if err != nil {
			return cpu, mem, err
		}
		cpu.Add(q)
		if q, err = resource.ParseQuantity(usage["memory"]); err != nil {
			return cpu, mem, err
		}
		mem.Add(q)
	}
	return cpu, mem, nil
}
