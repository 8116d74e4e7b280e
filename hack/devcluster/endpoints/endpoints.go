// Package endpoints publishes the EndpointSlices of Services whose pods run
// on loopback addresses.
//
// The API server rejects loopback addresses in IPv4 EndpointSlices and in
// Endpoints ("may not be in the loopback range"), so kube-controller-manager's
// endpointslice and endpoints controllers cannot work in the dev cluster,
// where every pod has an address 127.0.x.y. This controller stands in for
// them: per Service with a selector it writes one EndpointSlice of address
// type FQDN (a dotted quad is a valid DNS subdomain, and FQDN addresses are
// not checked against the loopback range) with the same endpoints,
// conditions (ready, serving, terminating), target references and ports the
// real controller would write. Clients of the dev cluster read them as
// kube-proxy reads IPv4 slices.
package endpoints

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// ManagedBy is the endpointslice.kubernetes.io/managed-by value of the slices written here.
const ManagedBy = "endpoints.devcluster.pacer.dev"

// Run keeps the slices up to date until ctx ends.
func Run(ctx context.Context, client kubernetes.Interface, log *slog.Logger) error {
	factory := informers.NewSharedInformerFactory(client, 5*time.Minute)
	pods := factory.Core().V1().Pods()
	services := factory.Core().V1().Services()
	slicesInf := factory.Discovery().V1().EndpointSlices()
	kick := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { trigger(kick) },
		UpdateFunc: func(any, any) { trigger(kick) },
		DeleteFunc: func(any) { trigger(kick) },
	}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), services.Informer(), slicesInf.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	for {
		select {
		case <-ctx.Done():
			factory.Shutdown()
			return nil
		case <-kick:
		case <-time.After(30 * time.Second):
		}
		svcs, _ := services.Lister().List(labels.Everything())
		for _, svc := range svcs {
			if len(svc.Spec.Selector) == 0 {
				continue
			}
			ps, _ := pods.Lister().Pods(svc.Namespace).List(labels.SelectorFromSet(svc.Spec.Selector))
			want := desired(svc, ps)
			have, err := slicesInf.Lister().EndpointSlices(svc.Namespace).Get(want.Name)
			switch {
			case apierrors.IsNotFound(err):
				_, err = client.DiscoveryV1().EndpointSlices(svc.Namespace).Create(ctx, want, metav1.CreateOptions{})
			case err == nil && !equality.Semantic.DeepEqual(have.Endpoints, want.Endpoints) || err == nil && !equality.Semantic.DeepEqual(have.Ports, want.Ports):
				upd := have.DeepCopy()
				upd.Endpoints, upd.Ports = want.Endpoints, want.Ports
				_, err = client.DiscoveryV1().EndpointSlices(svc.Namespace).Update(ctx, upd, metav1.UpdateOptions{})
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("write endpointslice", "service", svc.Namespace+"/"+svc.Name, "err", err)
				trigger(kick)
			}
		}
		// Pace the writes: at most a few passes a second.
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func trigger(kick chan struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// desired is the slice of svc given its selected pods.
func desired(svc *corev1.Service, pods []*corev1.Pod) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name:      svc.Name + "-loopback",
			Namespace: svc.Namespace,
			Labels: map[string]string{
				discoveryv1.LabelServiceName: svc.Name,
				discoveryv1.LabelManagedBy:   ManagedBy,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		AddressType: discoveryv1.AddressTypeFQDN,
	}
	var first *corev1.Pod
	slices.SortFunc(pods, func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	for _, p := range pods {
		// As the endpointslice controller: pods with an address that are not finished.
		if p.Status.PodIP == "" || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		if first == nil {
			first = p
		}
		ready := podReady(p)
		terminating := p.DeletionTimestamp != nil
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses: []string{p.Status.PodIP},
			Conditions: discoveryv1.EndpointConditions{
				Ready:       ptr.To(ready && !terminating),
				Serving:     ptr.To(ready),
				Terminating: ptr.To(terminating),
			},
			NodeName:  ptr.To(p.Spec.NodeName),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: p.Namespace, Name: p.Name, UID: p.UID},
		})
	}
	for _, sp := range svc.Spec.Ports {
		port := sp.TargetPort.IntVal
		if sp.TargetPort.StrVal != "" {
			port = 0
			if first != nil {
				port = findPort(first, sp.TargetPort.StrVal)
			}
		} else if port == 0 {
			port = sp.Port
		}
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr.To(sp.Name), Protocol: ptr.To(sp.Protocol), Port: ptr.To(port)})
	}
	return s
}

func findPort(p *corev1.Pod, name string) int32 {
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.Name == name {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
