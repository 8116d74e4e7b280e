package controllers

import (
	"context"
	"fmt"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/pacer-dev/pacer/controllers/render"
)

// reconcileConfigMap renders the pacer-api config. Its generation moves
// only when the content changes, and never backwards, even if the
// ConfigMap was deleted: pods report the generation they run.
func (r *TunedServiceReconciler) reconcileConfigMap(ctx context.Context, s *scope) error {
	current := &corev1.ConfigMap{}
	state, err := r.observe(ctx, s, client.ObjectKey{Namespace: s.ts.Namespace, Name: render.ConfigMapName(s.ts)}, current)
	if err != nil {
		return err
	}
	if state == foreign {
		// The Deployment would mount someone else's config: render nothing
		// that points at it, and report the pods that already run.
		s.problems[len(s.problems)-1].message += " Until then the Deployment is not rendered, since its pods would mount it."
		s.stopped = true
		return r.observeDeployment(ctx, s)
	}

	desired := render.ServiceConfig(s.ts, s.settings, 0)
	hash := render.ConfigHash(desired)
	gen := configGeneration(current, state == owned)
	if e := s.ts.Status.Effective; e != nil {
		gen = max(gen, e.ConfigGeneration)
	}
	if state != owned || current.Annotations[render.AnnotationConfigHash] != hash || gen == 0 {
		gen++
	}
	desired.Generation = gen

	ac, err := render.ConfigMap(s.ts, desired)
	if err != nil {
		return err
	}
	if err := r.write(ctx, s, ac, current, state, fmt.Sprintf("config generation %d", gen)); err != nil {
		return err
	}
	s.configGeneration, s.configHash = gen, hash // status claims only what was written
	return nil
}

func configGeneration(cm *corev1.ConfigMap, owned bool) int64 {
	if !owned {
		return 0
	}
	gen, err := strconv.ParseInt(cm.Annotations[render.AnnotationConfigGeneration], 10, 64)
	if err != nil {
		return 0
	}
	return gen
}

// reconcileDeployment renders the pods. Live settings reach them through
// the ConfigMap; only what they cannot pick up live changes the template.
func (r *TunedServiceReconciler) reconcileDeployment(ctx context.Context, s *scope) error {
	current := &appsv1.Deployment{}
	state, err := r.observe(ctx, s, client.ObjectKeyFromObject(s.ts), current)
	if err != nil || state == foreign {
		return err
	}
	if state == owned {
		s.deployment = current
	}
	in := render.DeploymentInput{
		Replicas:     s.settings.Replicas,
		PoolMaxConns: s.settings.PoolMaxConns,
		RestartHash:  render.RestartHash(s.secretVersions),
		DefaultImage: r.DefaultImage,
	}
	if s.allocation > 0 {
		in.MaxTotalConnections = ptr.To(connectionLimit(s.ts, s.allocation))
	}
	ac := render.Deployment(s.ts, in)
	if err := r.write(ctx, s, ac, current, state, fmt.Sprintf("%d replicas", s.settings.Replicas)); err != nil {
		return err
	}
	// The apply response is the Deployment as stored: read status from it
	// rather than from a cache that may not have caught up yet.
	if written, err := toTyped[appsv1.Deployment](ac); err == nil && written.ResourceVersion != "" {
		s.deployment = written
	}
	return nil
}

// observeDeployment reads the Deployment for status without changing it.
func (r *TunedServiceReconciler) observeDeployment(ctx context.Context, s *scope) error {
	current := &appsv1.Deployment{}
	err := r.Client.Get(ctx, client.ObjectKeyFromObject(s.ts), current)
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("get Deployment: %w", err)
	}
	if err == nil && metav1.IsControlledBy(current, s.ts) {
		s.deployment = current
	}
	return nil
}

func (r *TunedServiceReconciler) reconcileService(ctx context.Context, s *scope) error {
	current := &corev1.Service{}
	state, err := r.observe(ctx, s, client.ObjectKeyFromObject(s.ts), current)
	if err != nil || state == foreign {
		return err
	}
	return r.write(ctx, s, render.Service(s.ts), current, state, "")
}

// reconcilePodDisruptionBudget keeps a budget only while there is more than
// one pod, and removes its own budget otherwise. An object of the budget's
// name matters only while a budget is wanted: with one pod, only Pacer's own
// budget (known from the cache, which holds every budget Pacer made) is
// looked for, and nobody else's is an obstacle.
func (r *TunedServiceReconciler) reconcilePodDisruptionBudget(ctx context.Context, s *scope) error {
	current := &policyv1.PodDisruptionBudget{}
	key := client.ObjectKeyFromObject(s.ts)
	if render.WantsPDB(s.settings.Replicas) {
		state, err := r.observe(ctx, s, key, current)
		if err != nil || state == foreign {
			return err
		}
		return r.write(ctx, s, render.PodDisruptionBudget(s.ts), current, state, "")
	}
	err := r.Client.Get(ctx, key, current)
	if apierrors.IsNotFound(err) || (err == nil && !metav1.IsControlledBy(current, s.ts)) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get PodDisruptionBudget %s: %w", key, err)
	}
	err = r.Client.Delete(ctx, current, client.Preconditions{UID: &current.UID})
	if client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("delete PodDisruptionBudget %s: %w", key, err)
	}
	r.applier.forget("PodDisruptionBudget", key)
	r.Recorder.Eventf(s.ts, current, corev1.EventTypeNormal, "Deleted", "Reconcile",
		"deleted PodDisruptionBudget %s: a single pod needs none", key.Name)
	return nil
}

// childState says how an object of a child's name stands.
type childState int

const (
	absent  childState = iota // no object of that name
	owned                     // an object this TunedService controls
	foreign                   // an object of that name someone else owns
)

// observe reads the object of a child's name. A foreign object is reported
// as a problem with a Warning Event and left alone: Pacer never adopts.
func (r *TunedServiceReconciler) observe(ctx context.Context, s *scope, key types.NamespacedName, obj client.Object) (childState, error) {
	err := r.Client.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) {
		// The cache holds only objects labelled as Pacer's; ask the API
		// server whether an unlabelled one is in the way.
		err = r.APIReader.Get(ctx, key, obj)
		if apierrors.IsNotFound(err) {
			return absent, nil
		}
	}
	if err != nil {
		return absent, fmt.Errorf("get %T %s: %w", obj, key, err)
	}
	if metav1.IsControlledBy(obj, s.ts) {
		return owned, nil
	}
	kind := kindOf(obj)
	msg := fmt.Sprintf("%s %s exists and is not controlled by this TunedService; Pacer leaves it alone. Delete or rename it to let Pacer create its own.", kind, key.Name)
	s.problems = append(s.problems, problem{reason: "NotOwned", message: msg, regarding: obj})
	return foreign, nil
}

// write applies a child and emits an Event when the object changed.
func (r *TunedServiceReconciler) write(ctx context.Context, s *scope, ac applyConfig, current client.Object, state childState, detail string) error {
	beforeRV := ""
	if state == owned {
		beforeRV = current.GetResourceVersion()
	}
	sent, err := r.applier.apply(ctx, ac, beforeRV)
	if err != nil {
		s.problems = append(s.problems, problem{reason: "ApplyFailed", message: err.Error()})
		return err
	}
	afterRV := resourceVersionOf(ac)
	if !sent || afterRV == beforeRV {
		return nil
	}
	verb := "updated"
	if state == absent {
		verb = "created"
	}
	note := fmt.Sprintf("%s %s %s", verb, deref(ac.GetKind()), deref(ac.GetName()))
	if detail != "" {
		note += ": " + detail
	}
	reason := "Updated"
	if state == absent {
		reason = "Created"
	}
	r.Recorder.Eventf(s.ts, nil, corev1.EventTypeNormal, reason, "Reconcile", note)
	return nil
}

func kindOf(obj client.Object) string {
	switch obj.(type) {
	case *corev1.ConfigMap:
		return "ConfigMap"
	case *appsv1.Deployment:
		return "Deployment"
	case *corev1.Service:
		return "Service"
	case *policyv1.PodDisruptionBudget:
		return "PodDisruptionBudget"
	}
	return fmt.Sprintf("%T", obj)
}
