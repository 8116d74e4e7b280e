package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/pacer-dev/pacer/hack/devcluster/controlplane"
	"github.com/pacer-dev/pacer/hack/devcluster/metricsserver"
	"github.com/pacer-dev/pacer/hack/devcluster/nodeagent"
	"github.com/pacer-dev/pacer/hack/devcluster/pki"
)

// kubeletPKI makes the dev cluster's CA in dir (dev-ca.crt) and the node
// agent's kubelet API serving certificate, for the node's address and name.
func kubeletPKI(dir, nodeName, hostIP, clientCAFile string) (*pki.CA, *nodeagent.KubeletAPI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, err
	}
	ca, err := pki.NewCA("pacer-dev-cluster-ca")
	if err != nil {
		return nil, nil, err
	}
	if _, err := ca.WriteCert(dir, "dev-ca"); err != nil {
		return nil, nil, err
	}
	certFile, keyFile, err := ca.IssueFiles(dir, "kubelet", pki.Request{
		CommonName: nodeName, DNSNames: []string{nodeName}, IPs: []net.IP{net.ParseIP(hostIP)}, Server: true,
	})
	if err != nil {
		return nil, nil, err
	}
	return ca, &nodeagent.KubeletAPI{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clientCAFile}, nil
}

// startMetricsServer starts metrics-server and says on stdout whether the
// resource metrics API is there ("resource metrics: ready" or
// "resource metrics: unavailable: why"); when it is not, it warns on
// stderr and the cluster runs on without it (no kubectl top, no HPA).
func startMetricsServer(ctx context.Context, cp *controlplane.ControlPlane, o metricsserver.Options, cgroups, off bool) *metricsserver.Server {
	unavailable := func(why string) {
		fmt.Fprintf(os.Stderr, "WARNING: no resource metrics (metrics.k8s.io): %s; kubectl top and HorizontalPodAutoscalers will not work\n", why)
		fmt.Println("resource metrics: unavailable:", why)
	}
	switch {
	case off:
		unavailable("--metrics-server=off")
		return nil
	case !cgroups:
		unavailable("pod limits are not enforced, so there is no per-pod usage")
		return nil
	}
	kubeconfig, err := cp.UserKubeconfig("metrics-server", envtest.User{Name: metricsserver.User, Groups: metricsserver.Groups})
	if err != nil {
		unavailable(err.Error())
		return nil
	}
	o.Kubeconfig = kubeconfig
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	fmt.Fprintln(os.Stderr, "starting metrics-server")
	ms, err := metricsserver.Start(startCtx, cp.Config, o)
	if err != nil {
		unavailable(err.Error())
		return nil
	}
	fmt.Fprintf(os.Stderr, "metrics-server running (metrics.k8s.io/v1beta1, a scrape every %s), log: %s\n", metricsserver.Resolution, ms.Log)
	fmt.Println("resource metrics: ready")
	go func() {
		select {
		case <-ms.Exited:
		case <-ctx.Done():
			return
		}
		if ctx.Err() != nil {
			return
		}
		unavailable(fmt.Sprintf("metrics-server exited: %v (see %s)", ms.Err, ms.Log))
		if c, err := client.New(cp.Config, client.Options{}); err == nil {
			metricsserver.Unregister(context.Background(), c)
		}
	}()
	return ms
}
