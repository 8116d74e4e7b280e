// Package controllers reconciles TunedServices: it renders each one's
// ConfigMap, Deployment, Service and PodDisruptionBudget, and reports what
// it did and saw in status, conditions and Events.
package controllers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/source"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/budget"
	"github.com/pacer-dev/pacer/controllers/metrics"
	"github.com/pacer-dev/pacer/controllers/observe"
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
	// DefaultImage is the pacer-api image of a TunedService without
	// spec.image; empty means pacerv1.DefaultImage.
	DefaultImage string
	// MaxConcurrentReconciles is how many TunedServices are reconciled at
	// once; 0 means 4.
	MaxConcurrentReconciles int
	// ObservationTimeout bounds one observation of a TunedService's pods
	// (made off the reconcile workers, at most half its interval); 0
	// means 10s.
	ObservationTimeout time.Duration
	// MaxConcurrentObservations is how many TunedServices are observed at
	// once; services whose last observation was slow (a hung pod) get a
	// quarter as many slots of their own. 0 means 32.
	MaxConcurrentObservations int

	applier   *applier
	memo      statusMemo
	loops     loops
	observers *observe.Observers[observed]
}

// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=tunedservices,verbs=get;list;watch
// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=tunedservices/status,verbs=get;patch
// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=tunedservices/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=configmaps;services,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch
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
	if err := r.findAutoscaler(ctx, s); err != nil {
		return err
	}
	if !r.resolveSecrets(ctx, s) || !r.resolveBudget(ctx, s) {
		// Nothing new can run without its Secrets or its room in the
		// connection budget (status says why), but pods already running
		// keep serving: report them.
		return r.observeDeployment(ctx, s)
	}
	r.syncSettings(s)
	for _, step := range []func(context.Context, *scope) error{
		r.reconcileTuning,
		r.fitAutoscaled,
		r.fitAllocation,
		r.reconcileConfigMap,
		r.reconcileDeployment,
		r.reconcileService,
		r.reconcilePodDisruptionBudget,
	} {
		if err := step(ctx, s); err != nil {
			return err
		}
		if s.stopped {
			return nil
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
		setConnectionGauges(ts, s.settings, s.deployment)
		setConfigGeneration(ts, s.configGeneration)
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
	r.setAutoscaled(s)
	if passErr == nil {
		st.ObservedGeneration = ts.Generation
	}
	setConditionGauges(ts)

	r.warnNewProblems(s)

	if equality.Semantic.DeepEqual(s.before.Status, ts.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, ts, client.MergeFrom(s.before)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // deleted during the pass: nothing left to report on
		}
		return fmt.Errorf("patch status: %w", err)
	}
	r.memo.remember(ts)
	return nil
}

// warnNewProblems emits a Warning Event for each problem the status did not
// already report, so a problem that lasts is announced once, not every retry.
func (r *TunedServiceReconciler) warnNewProblems(s *scope) {
	was := meta.FindStatusCondition(s.before.Status.Conditions, pacerv1.ConditionDegraded)
	for _, p := range s.problems {
		if was != nil && was.Status == metav1.ConditionTrue && strings.Contains(was.Message, p.message) {
			continue
		}
		r.Recorder.Eventf(s.ts, p.regarding, corev1.EventTypeWarning, p.reason, "Reconcile", p.message)
	}
}

// forget drops everything kept in memory about a deleted TunedService.
func (r *TunedServiceReconciler) forget(key types.NamespacedName) {
	r.memo.forget(key)
	r.forgetTuning(key)
	r.applier.forgetOwner(key)
	forgetService(key)
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
	// A finished observation queues its TunedService through this channel.
	finished := make(chan event.GenericEvent, 64)
	o := observe.Options[observed]{
		Observe:     r.observeService,
		Recover:     observationPanicked,
		Timeout:     r.ObservationTimeout,
		MaxInFlight: r.MaxConcurrentObservations,
	}
	o.Done = func(key types.NamespacedName) {
		ts := &pacerv1.TunedService{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
		select {
		case finished <- event.GenericEvent{Object: ts}:
		case <-ctx.Done():
		}
	}
	r.observers = observe.New(o)
	if err := mgr.Add(r.observers); err != nil { // stops them all with the manager
		return fmt.Errorf("add observers: %w", err)
	}
	if err := mgr.GetFieldIndexer().IndexField(ctx, &pacerv1.TunedService{}, secretIndex, secretNames); err != nil {
		return fmt.Errorf("index TunedServices by Secret: %w", err)
	}
	if err := budget.IndexMembers(ctx, mgr); err != nil {
		return fmt.Errorf("index TunedServices by ConnectionBudget: %w", err)
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
		// An HPA on the TunedService owns its replicas; one on the
		// Deployment is a misconfiguration to report.
		Watches(&autoscalingv2.HorizontalPodAutoscaler{}, handler.EnqueueRequestsFromMapFunc(forAutoscaler)).
		// A member reads its allocation from its budget's status.
		Watches(&pacerv1.ConnectionBudget{}, handler.EnqueueRequestsFromMapFunc(r.forBudget)).
		WatchesRawSource(source.Channel(finished, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: cmp.Or(r.MaxConcurrentReconciles, 4)}).
		Named("tunedservice").
		Complete(r)
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

// forBudget queues a budget's members: its status carries their allocations.
func (r *TunedServiceReconciler) forBudget(ctx context.Context, o client.Object) []ctrl.Request {
	var list pacerv1.TunedServiceList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		client.MatchingFields{budget.MemberIndex: o.GetName()}); err != nil {
		log.FromContext(ctx).Error(err, "list TunedServices for ConnectionBudget", "budget", o.GetName())
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
