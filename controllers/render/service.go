package render

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// Service is the desired ClusterIP Service of ts: the API on port 80 and
// the admin port (metrics) on 9090 for Prometheus to scrape.
func Service(ts *pacerv1.TunedService) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(ts.Name, ts.Namespace).
		WithLabels(Labels(ts)).
		WithOwnerReferences(OwnerReference(ts)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(SelectorLabels(ts)).
			WithPorts(
				corev1ac.ServicePort().WithName("http").WithPort(80).
					WithTargetPort(intstr.FromString("http")).WithProtocol(corev1.ProtocolTCP),
				corev1ac.ServicePort().WithName("admin").WithPort(AdminPort).
					WithTargetPort(intstr.FromString("admin")).WithProtocol(corev1.ProtocolTCP),
			))
}
