// Package controllers reconciles TunedServices: it renders each one's
// ConfigMap, Deployment, Service and PodDisruptionBudget, and reports what
// it did and saw in status, conditions and Events.
package controllers

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/metrics"
	"github.com/pacer-dev/pacer/controllers/render"
)

// retryAfterProblem is how soon a pass that found a problem outside Pacer's
// control (a missing Secret, a foreign object in the way) looks again, on
// top of the watches that usually notice the fix sooner.
const retryAfterProblem = time.Minute

// secretIndex indexes TunedServices by the Secrets they reference.
const secretIndex = ".spec.secretNames"

// TunedServiceReconciler reconciles TunedService objects.
type TunedServiceReconciler struct {
	// Client reads from the manager's cache and writes to the API server.
	Client client.Client
	// APIReader reads from the API server directly. The cache only holds
	// objects labelled as Pacer's, so this is how an object of the same name
	// that Pacer does not own is found.
	APIReader client.Reader
	// Recorder emits events.k8s.io Events.
	Recorder events.EventRecorder
	// Metrics hands the tuner the metrics source each TunedService asks
	// for: its pods' admin ports (default) or a Prometheus server.
	Metrics *metrics.Sources
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	applier *applier
	memo    statusMemo
	loops   loops
}

// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=tunedservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=tunedservices/status,verbs=get;patch
// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=tunedservices/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile brings one TunedService's children to the desired state and
// writes its status once, at the end.
func (r *TunedServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ts := &pacerv1.TunedService{}
	if err := r.Client.Get(ctx, req.NamespacedName, ts); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !ts.DeletionTimestamp.IsZero() {
		r.forget(req.NamespacedName)
		return ctrl.Result{}, nil // the garbage collector deletes the children
	}
	r.memo.restore(ts)

	s := newScope(ts)
	err := r.reconcile(ctx, s)
	statusErr := r.writeStatus(ctx, s, err)
	if err := errors.Join(err, statusErr); err != nil {
		return ctrl.Result{}, err
	}
	after := s.requeueAfter
	if len(s.problems) > 0 && (after == 0 || after > retryAfterProblem) {
		after = retryAfterProblem
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// reconcile runs the steps of one pass in order. A step that finds a
// problem outside Pacer's control records it in the scope and the pass goes
// on where it safely can; an error stops the pass and is retried.
func (r *TunedServiceReconciler) reconcile(ctx context.Context, s *scope) error {
	if !r.resolveSecrets(ctx, s) {
		// Nothing new can run without its Secrets (status says why), but
		// pods already running keep serving: report them.
		return r.observeDeployment(ctx, s)
	}
	r.syncSettings(s)
	for _, step := range []func(context.Context, *scope) error{
		r.reconcileTuning,
		r.reconcileConfigMap,
		r.reconcileDeployment,
		r.reconcileService,
		r.reconcilePodDisruptionBudget,
	} {
		if err := step(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

// writeStatus computes status from what the pass saw and patches it when it
// changed. observedGeneration moves only when the pass succeeded.
func (r *TunedServiceReconciler) writeStatus(ctx context.Context, s *scope, passErr error) error {
	ts := s.ts
	st := &ts.Status
	st.Selector = labels.SelectorFromSet(render.SelectorLabels(ts)).String()
	if d := s.deployment; d != nil {
		st.Replicas = d.Status.Replicas
		st.ReadyReplicas = d.Status.ReadyReplicas
		st.UpdatedReplicas = d.Status.UpdatedReplicas
	}
	if s.configGeneration > 0 {
		spec := render.SpecSettings(&ts.Spec)
		st.Effective = &pacerv1.EffectiveSettings{
			Settings:         s.settings,
			ConfigGeneration: s.configGeneration,
			ConfigHash:       s.configHash,
			SpecSettings:     &spec,
		}
		setSettingGauges(ts, s.settings)
	}
	for _, c := range conditions(conditionInput{
		ts:         ts,
		deployment: s.deployment,
		problems:   s.problems,
		passErr:    passErr,
		tuned:      s.tuned,
	}) {
		c.ObservedGeneration = ts.Generation
		meta.SetStatusCondition(&st.Conditions, c) // keeps lastTransitionTime if unchanged
	}
	if passErr == nil {
		st.ObservedGeneration = ts.Generation
	}

	if equality.Semantic.DeepEqual(s.before.Status, ts.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, ts, client.MergeFrom(s.before)); err != nil {
		return fmt.Errorf("patch status: %w", client.IgnoreNotFound(err))
	}
	r.memo.remember(ts)
	return nil
}

// forget drops everything kept in memory about a deleted TunedService.
func (r *TunedServiceReconciler) forget(key types.NamespacedName) {
	r.memo.forget(key)
	r.forgetTuning(key)
	r.applier.forgetOwner(key)
}

func (r *TunedServiceReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager registers the controller and its watches.
func (r *TunedServiceReconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	r.applier = newApplier(r.Client)
	if r.Metrics == nil {
		r.Metrics = metrics.NewSources(metrics.SourcesOptions{})
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &pacerv1.TunedService{}, secretIndex, secretNames); err != nil {
		return fmt.Errorf("index TunedServices by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		// Status writes (ours included) do not change the generation; the
		// owned objects below still trigger passes on every change.
		For(&pacerv1.TunedService{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&corev1.ConfigMap{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&policyv1.PodDisruptionBudget{}).
		// Only Secrets' metadata is watched and cached: Pacer needs to know
		// that a referenced Secret exists and when it changes, never its value.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.forSecret)).
		// A slow scrape of one TunedService's pods must not hold up the others.
		WithOptions(controller.Options{MaxConcurrentReconciles: 4}).
		Named("tunedservice").
		Complete(r)
}

// CacheByObject restricts the manager's cache of child kinds to the objects
// Pacer manages, so the operator's memory does not grow with the cluster.
func CacheByObject() map[client.Object]cache.ByObject {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})}
	return map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}:             managed,
		&appsv1.Deployment{}:            managed,
		&corev1.Service{}:               managed,
		&policyv1.PodDisruptionBudget{}: managed,
		&corev1.Pod{}:                   managed,
	}
}

func (r *TunedServiceReconciler) forSecret(ctx context.Context, o client.Object) []ctrl.Request {
	var list pacerv1.TunedServiceList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{secretIndex: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list TunedServices for Secret", "secret", o.GetName())
		return nil
	}
	reqs := make([]ctrl.Request, 0, len(list.Items))
	for _, ts := range list.Items {
		reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&ts)})
	}
	return reqs
}

func secretNames(o client.Object) []string {
	ts := o.(*pacerv1.TunedService)
	names := []string{ts.Spec.Database.URLSecretRef.Name}
	if r := ts.Spec.Cache.Redis; r != nil && r.URLSecretRef.Name != names[0] {
		names = append(names, r.URLSecretRef.Name)
	}
	return names
}
