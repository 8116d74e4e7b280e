package nodeagent

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// metrics-server finds the kubelet API at the node's InternalIP and the
// port in status.daemonEndpoints (--kubelet-use-node-status-port).
func TestNodeAdvertisesTheKubeletAPI(t *testing.T) {
	a := &Agent{opts: DefaultOptions(), kubeletPort: 34567}
	n := a.nodeObject()
	if got := n.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 34567 {
		t.Errorf("kubelet endpoint port %d, want 34567", got)
	}
	var internal string
	for _, addr := range n.Status.Addresses {
		if addr.Type == corev1.NodeInternalIP {
			internal = addr.Address
		}
	}
	if internal != "127.0.0.1" {
		t.Errorf("InternalIP %q, want 127.0.0.1", internal)
	}

	a.kubeletPort = 0
	if got := a.nodeObject().Status.DaemonEndpoints.KubeletEndpoint.Port; got != 0 {
		t.Errorf("no kubelet API, but the node advertises port %d", got)
	}
}
