package render

import (
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
)

// The spec embeds typed core/v1 structs; apply configurations share their
// JSON form, so a JSON round trip converts one into the other exactly.
func toleration(t corev1.Toleration) *corev1ac.TolerationApplyConfiguration {
	return viaJSON(t, &corev1ac.TolerationApplyConfiguration{})
}

func affinity(a *corev1.Affinity) *corev1ac.AffinityApplyConfiguration {
	return viaJSON(a, &corev1ac.AffinityApplyConfiguration{})
}

func topologySpread(c corev1.TopologySpreadConstraint) *corev1ac.TopologySpreadConstraintApplyConfiguration {
	return viaJSON(c, &corev1ac.TopologySpreadConstraintApplyConfiguration{})
}

func viaJSON[T any](in any, out *T) *T {
	b, err := json.Marshal(in)
	if err == nil {
		err = json.Unmarshal(b, out)
	}
	if err != nil {
		panic(fmt.Sprintf("render: convert %T: %v", in, err))
	}
	return out
}

func mustQuantity(s string) resource.Quantity { return resource.MustParse(s) }
