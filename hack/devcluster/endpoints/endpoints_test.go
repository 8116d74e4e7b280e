package endpoints

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func pod(name, ip string, ready, terminating bool, phase corev1.PodPhase) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: "uid-" + "name"},
		Spec:       corev1.PodSpec{NodeName: "n", Containers: []corev1.Container{{Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: corev1.PodStatus{PodIP: ip, Phase: phase, Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: map[bool]corev1.ConditionStatus{true: corev1.ConditionTrue, false: corev1.ConditionFalse}[ready]},
		}},
	}
	if terminating {
		p.DeletionTimestamp = &metav1.Time{}
	}
	return p
}

func TestDesired(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "api", Namespace: "ns", UID: "svc"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
			{Name: "admin", Port: 9090, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolTCP},
		}},
	}
	got := desired(svc, []*corev1.Pod{
		pod("b", "127.0.1.2", true, true, corev1.PodRunning),  // draining
		pod("a", "127.0.1.1", true, false, corev1.PodRunning), // ready
		pod("c", "127.0.1.3", false, false, corev1.PodRunning),
		pod("d", "", false, false, corev1.PodPending),            // no address yet
		pod("e", "127.0.1.5", false, false, corev1.PodSucceeded), // finished
	})
	if got.Name != "api-loopback" || got.AddressType != discoveryv1.AddressTypeFQDN || got.Labels[discoveryv1.LabelServiceName] != "api" {
		t.Fatalf("meta: %s %s %v", got.Name, got.AddressType, got.Labels)
	}
	type ep struct {
		Addr                        string
		Ready, Serving, Terminating bool
	}
	var eps []ep
	for _, e := range got.Endpoints {
		eps = append(eps, ep{e.Addresses[0], *e.Conditions.Ready, *e.Conditions.Serving, *e.Conditions.Terminating})
	}
	want := []ep{
		{"127.0.1.1", true, true, false},
		{"127.0.1.2", false, true, true},
		{"127.0.1.3", false, false, false},
	}
	if d := cmp.Diff(want, eps); d != "" {
		t.Errorf("endpoints (-want +got):\n%s", d)
	}
	wantPorts := []discoveryv1.EndpointPort{
		{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)},
		{Name: ptr.To("admin"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](9090)},
	}
	if d := cmp.Diff(wantPorts, got.Ports); d != "" {
		t.Errorf("ports (-want +got):\n%s", d)
	}
}
