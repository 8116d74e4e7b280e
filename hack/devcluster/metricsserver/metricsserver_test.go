package metricsserver

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/pacer-dev/pacer/hack/devcluster/pki"
)

func find(t *testing.T, objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("no %s %s", kind, name)
	return nil
}

func TestObjectsPointTheAPIServiceAtTheProcess(t *testing.T) {
	ca, err := pki.NewCA("ca")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Objects(40123, ca.CertPEM())
	if err != nil {
		t.Fatal(err)
	}

	api := find(t, objs, "APIService", APIServiceName)
	bundle, _, _ := unstructured.NestedString(api.Object, "spec", "caBundle")
	pemBytes, err := base64.StdEncoding.DecodeString(bundle)
	if err != nil || !bytes.Equal(pemBytes, ca.CertPEM()) {
		t.Errorf("caBundle is not the dev CA (%v)", err)
	}
	if skip, _, _ := unstructured.NestedBool(api.Object, "spec", "insecureSkipTLSVerify"); skip {
		t.Error("the APIService skips TLS verification")
	}
	svcName, _, _ := unstructured.NestedString(api.Object, "spec", "service", "name")
	svcNS, _, _ := unstructured.NestedString(api.Object, "spec", "service", "namespace")

	svc := find(t, objs, "Service", svcName)
	if svc.GetNamespace() != svcNS {
		t.Errorf("Service in %q, APIService points at %q", svc.GetNamespace(), svcNS)
	}
	if _, has, _ := unstructured.NestedMap(svc.Object, "spec", "selector"); has {
		t.Error("the Service has a selector: package endpoints would overwrite its slice")
	}

	slice := find(t, objs, "EndpointSlice", "metrics-server-loopback")
	if slice.GetLabels()["kubernetes.io/service-name"] != svcName {
		t.Errorf("slice labels %v do not name the Service", slice.GetLabels())
	}
	eps, _, _ := unstructured.NestedSlice(slice.Object, "endpoints")
	ports, _, _ := unstructured.NestedSlice(slice.Object, "ports")
	if len(eps) != 1 || len(ports) != 1 {
		t.Fatalf("endpoints %v ports %v", eps, ports)
	}
	addrs, _, _ := unstructured.NestedStringSlice(eps[0].(map[string]any), "addresses")
	port, _, _ := unstructured.NestedInt64(ports[0].(map[string]any), "port")
	if !slices.Equal(addrs, []string{"127.0.0.1"}) || port != 40123 {
		t.Errorf("slice points at %v:%d, want 127.0.0.1:40123", addrs, port)
	}

	// The ClusterRole grants what the node agent's kubelet API checks.
	role := find(t, objs, "ClusterRole", "system:metrics-server")
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	granted := false
	for _, r := range rules {
		res, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "resources")
		verbs, _, _ := unstructured.NestedStringSlice(r.(map[string]any), "verbs")
		granted = granted || slices.Contains(res, "nodes/metrics") && slices.Contains(verbs, "get")
	}
	if !granted {
		t.Error("system:metrics-server does not grant get nodes/metrics")
	}
	binding := find(t, objs, "ClusterRoleBinding", "system:metrics-server")
	subjects, _, _ := unstructured.NestedSlice(binding.Object, "subjects")
	s := subjects[0].(map[string]any)
	if got := "system:serviceaccount:" + s["namespace"].(string) + ":" + s["name"].(string); got != User {
		t.Errorf("binding subject %s, metrics-server authenticates as %s", got, User)
	}
}

func TestArgs(t *testing.T) {
	args := Args(Options{Kubeconfig: "/k", KubeletCAFile: "/ca"}, 40123, "/c", "/key")
	joined := " " + strings.Join(args, " ") + " "
	for _, want := range []string{
		"--kubeconfig=/k", "--authentication-kubeconfig=/k", "--authorization-kubeconfig=/k",
		"--bind-address=127.0.0.1", "--secure-port=40123",
		"--tls-cert-file=/c", "--tls-private-key-file=/key",
		"--kubelet-certificate-authority=/ca", "--kubelet-preferred-address-types=InternalIP",
		"--kubelet-use-node-status-port",
	} {
		if !strings.Contains(joined, " "+want+" ") {
			t.Errorf("missing %s in %v", want, args)
		}
	}
	if strings.Contains(joined, "insecure") {
		t.Errorf("an insecure flag: %v", args)
	}
	if Resolution < 10*time.Second {
		t.Errorf("metric resolution %s is below metrics-server's minimum 10s", Resolution)
	}
}
