package budget

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/render"
)

// MemberIndex indexes TunedServices by the ConnectionBudget they join.
const MemberIndex = ".spec.database.budgetRef.name"

// recheck is how soon a budget looks again, in seconds, while a grant
// waits on a cut or a leaving member's pods: pod and member watches
// usually notice sooner.
const recheck = 5 * time.Second

// afterConflict is how soon, in seconds, a division that lost a race with
// its own previous write is made again, from the cache once it has caught up.
const afterConflict = time.Second

// Reconciler is the one writer of a ConnectionBudget's allocations.
type Reconciler struct {
	// Client reads from the manager's cache and writes status.
	Client client.Client
	// Recorder emits events.k8s.io Events.
	Recorder events.EventRecorder
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=connectionbudgets,verbs=get;list;watch
// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=connectionbudgets/status,verbs=get;patch
// +kubebuilder:rbac:groups=tuning.pacer.dev,resources=tunedservices,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile divides one budget's room and writes the division to its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &pacerv1.ConnectionBudget{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		if apierrors.IsNotFound(err) {
			forgetGauges(req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		forgetGauges(req.Namespace, req.Name)
		return ctrl.Result{}, nil
	}
	before := b.DeepCopy()
	now := r.now()

	var list pacerv1.TunedServiceList
	if err := r.Client.List(ctx, &list, client.InNamespace(b.Namespace), client.MatchingFields{MemberIndex: b.Name}); err != nil {
		return ctrl.Result{}, fmt.Errorf("list members: %w", err)
	}
	duplicate, err := r.duplicateOf(ctx, b)
	if err != nil {
		return ctrl.Result{}, err
	}
	members, byName, err := r.members(ctx, b, list.Items, duplicate, now)
	if err != nil {
		return ctrl.Result{}, err
	}
	room := int64(b.Spec.MaxConnections) - int64(b.Spec.Reserved)
	d := Divide(room, members)

	r.writeDivision(b, d, duplicate)
	if !equality.Semantic.DeepEqual(before.Status, b.Status) {
		// Optimistic lock: a division made from a stale copy of the
		// allocations (the cache one write behind) could grant room that
		// a write it did not see has already granted.
		patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
		if err := r.Client.Status().Patch(ctx, b, patch); err != nil {
			switch {
			case apierrors.IsNotFound(err):
				return ctrl.Result{}, nil
			case apierrors.IsConflict(err):
				return ctrl.Result{RequeueAfter: afterConflict}, nil
			}
			return ctrl.Result{}, fmt.Errorf("patch status: %w", err)
		}
		r.announceRefusals(before, b, byName)
		r.announceAllocations(before, b)
	}
	setGauges(b)
	leaving := slices.ContainsFunc(d.Shares, func(s Share) bool { return s.State == pacerv1.MemberLeaving })
	if d.Waiting || leaving {
		return ctrl.Result{RequeueAfter: recheck}, nil
	}
	return ctrl.Result{}, nil
}

// members gathers what the division needs of each member, and of each
// former member whose pods are still there.
func (r *Reconciler) members(ctx context.Context, b *pacerv1.ConnectionBudget, items []pacerv1.TunedService,
	duplicate string, now time.Time) ([]Member, map[string]*pacerv1.TunedService, error) {
	prev := map[string]pacerv1.BudgetMember{}
	for _, m := range b.Status.Members {
		prev[m.Name] = m
	}
	byName := map[string]*pacerv1.TunedService{}
	var out []Member
	for i := range items {
		ts := &items[i]
		if !ts.DeletionTimestamp.IsZero() {
			continue // counted below as leaving, while its pods are there
		}
		pods, err := r.pods(ctx, b.Namespace, ts.Name)
		if err != nil {
			return nil, nil, err
		}
		worst, perPod := WorstCaseOf(ts, pods, now)
		ref := ts.Spec.Database.BudgetRef
		m := Member{
			Name: ts.Name, Created: ts.CreationTimestamp.Time,
			Min: int64(ref.Min), Weight: int64(max(ref.Weight, 1)), Max: int64(ptr.Deref(ref.Max, 0)),
			Need: NeedOf(ts), WorstCase: worst, PerPod: perPod, Pods: pods, Refused: duplicate,
		}
		if p, ok := prev[ts.Name]; ok && p.State == pacerv1.MemberAdmitted {
			m.Allocated, m.Admitted = int64(p.Allocated), true
		}
		out = append(out, m)
		byName[ts.Name] = ts
	}
	for _, p := range b.Status.Members {
		if _, ok := byName[p.Name]; ok {
			continue
		}
		pods, err := r.pods(ctx, b.Namespace, p.Name)
		if err != nil {
			return nil, nil, err
		}
		if pods == 0 {
			continue // gone: its room is free
		}
		perPod := int64(p.PodConnections)
		worst := int64(pods) * perPod
		if perPod == 0 {
			worst = int64(p.WorstCaseInUse)
		}
		out = append(out, Member{Name: p.Name, Leaving: true, WorstCase: worst, PerPod: perPod, Pods: pods})
	}
	return out, byName, nil
}

// pods counts a member's pods that exist, terminating ones included:
// each may hold connections until it is gone.
func (r *Reconciler) pods(ctx context.Context, namespace, name string) (int32, error) {
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.InNamespace(namespace), client.MatchingLabels{
		render.LabelName: render.AppName, render.LabelInstance: name, render.LabelManagedBy: render.ManagedBy,
	}); err != nil {
		return 0, fmt.Errorf("list pods of %s: %w", name, err)
	}
	var n int32
	for _, p := range list.Items {
		if p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			n++
		}
	}
	return n, nil
}

// duplicateOf says why b is refused when an older budget in its namespace
// claims the same database; "" otherwise.
func (r *Reconciler) duplicateOf(ctx context.Context, b *pacerv1.ConnectionBudget) (string, error) {
	db := b.Spec.Database
	if db == nil {
		return "", nil
	}
	var list pacerv1.ConnectionBudgetList
	if err := r.Client.List(ctx, &list, client.InNamespace(b.Namespace)); err != nil {
		return "", fmt.Errorf("list budgets: %w", err)
	}
	for _, o := range list.Items {
		if o.Name == b.Name || o.Spec.Database == nil || *o.Spec.Database != *db || !o.DeletionTimestamp.IsZero() {
			continue
		}
		if o.CreationTimestamp.Before(&b.CreationTimestamp) ||
			(o.CreationTimestamp.Equal(&b.CreationTimestamp) && o.Name < b.Name) {
			return fmt.Sprintf("ConnectionBudget %q already claims the database of Secret %s key %s: one budget per database",
				o.Name, db.Name, db.Key), nil
		}
	}
	return "", nil
}

// writeDivision lands a division in b's status.
func (r *Reconciler) writeDivision(b *pacerv1.ConnectionBudget, d Division, duplicate string) {
	st := &b.Status
	st.Members = st.Members[:0]
	var admitted int32
	for _, sh := range d.Shares {
		m := pacerv1.BudgetMember{
			Name: sh.Name, State: sh.State,
			Guaranteed: clamp(sh.Guaranteed), Allocated: clamp(sh.Allocated), Target: clamp(sh.Target),
			WorstCaseInUse: clamp(sh.WorstCase), Message: sh.Message,
		}
		if sh.State == pacerv1.MemberAdmitted {
			admitted++
		}
		m.PodConnections, m.Pods = clamp(sh.PerPod), sh.Pods
		st.Members = append(st.Members, m)
	}
	slices.SortFunc(st.Members, func(a, b pacerv1.BudgetMember) int { return strings.Compare(a.Name, b.Name) })
	st.Allocated, st.Free, st.MemberCount = clamp(d.Held), clamp(d.Free), admitted
	st.ObservedGeneration = b.Generation

	ready := metav1.Condition{Type: pacerv1.ConditionReady, Status: metav1.ConditionTrue, Reason: "Divided",
		Message: fmt.Sprintf("%d members admitted; %d of %d connections held, %d free", admitted, d.Held, int64(b.Spec.MaxConnections)-int64(b.Spec.Reserved), d.Free)}
	if d.Waiting {
		ready.Reason = "GrantsWaitOnCuts"
		ready.Message += "; grants wait until the members cut are seen within their allocations"
	}
	if duplicate != "" {
		ready.Status, ready.Reason, ready.Message = metav1.ConditionFalse, "DuplicateDatabase", duplicate
	}
	over := metav1.Condition{Type: pacerv1.ConditionOvercommitted, Status: metav1.ConditionFalse, Reason: "MinimumsFit",
		Message: "every member's guaranteed minimum fits"}
	if len(d.Refused) > 0 && duplicate == "" {
		over.Status, over.Reason = metav1.ConditionTrue, "MinimumsDoNotFit"
		over.Message = fmt.Sprintf("refused (newest first to go): %s: the guaranteed minimums do not fit in maxConnections %d less reserved %d",
			strings.Join(d.Refused, ", "), b.Spec.MaxConnections, b.Spec.Reserved)
	}
	for _, c := range []metav1.Condition{ready, over} {
		c.ObservedGeneration = b.Generation
		meta.SetStatusCondition(&st.Conditions, c)
	}
}

// announceRefusals emits a Warning Event on the budget and on the member
// for each member newly refused.
func (r *Reconciler) announceRefusals(before, b *pacerv1.ConnectionBudget, byName map[string]*pacerv1.TunedService) {
	was := map[string]bool{}
	for _, m := range before.Status.Members {
		was[m.Name] = m.State == pacerv1.MemberRefused
	}
	for _, m := range b.Status.Members {
		if m.State != pacerv1.MemberRefused || was[m.Name] {
			continue
		}
		ts := byName[m.Name]
		if ts == nil {
			continue // refused members are current ones
		}
		r.Recorder.Eventf(b, ts, corev1.EventTypeWarning, "MemberRefused", "Admit", "%s refused: %s", m.Name, m.Message)
		r.Recorder.Eventf(ts, b, corev1.EventTypeWarning, "BudgetRefused", "Admit", "ConnectionBudget %s refused this service: %s", b.Name, m.Message)
	}
}

// announceAllocations emits an Event on the budget for each allocation
// it moved: kubectl describe shows how the room changed hands.
func (r *Reconciler) announceAllocations(before, b *pacerv1.ConnectionBudget) {
	was := map[string]int32{}
	for _, m := range before.Status.Members {
		was[m.Name] = m.Allocated
	}
	for _, m := range b.Status.Members {
		from := was[m.Name]
		if m.State != pacerv1.MemberAdmitted || m.Allocated == from {
			continue
		}
		reason, why := "Granted", ""
		if m.Allocated < from {
			reason = "Cut"
		}
		if m.Allocated != m.Target {
			why = fmt.Sprintf("; target %d: %s", m.Target, m.Message)
		}
		r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, reason, "Allocate", "%s: %d → %d connections (holds %d)%s",
			m.Name, from, m.Allocated, m.WorstCaseInUse, why)
	}
}

func clamp(v int64) int32 { return int32(max(min(v, 1<<31-1), -1<<31)) }

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// IndexMembers registers MemberIndex with the manager.
func IndexMembers(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &pacerv1.TunedService{}, MemberIndex, func(o client.Object) []string {
		if ref := o.(*pacerv1.TunedService).Spec.Database.BudgetRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	})
}

// SetupWithManager registers the controller and its watches. It expects
// MemberIndex registered (IndexMembers).
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&pacerv1.ConnectionBudget{}).
		// A member's status (what its tuner wants, the settings in effect)
		// and its joining or leaving change the division; an update maps
		// both the old and the new budgetRef.
		Watches(&pacerv1.TunedService{}, handler.EnqueueRequestsFromMapFunc(forMember)).
		// Pods coming and going change what a member may hold.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.forPod)).
		Named("connectionbudget").
		Complete(r)
}

func forMember(_ context.Context, o client.Object) []ctrl.Request {
	ref := o.(*pacerv1.TunedService).Spec.Database.BudgetRef
	if ref == nil {
		return nil
	}
	return []ctrl.Request{{NamespacedName: client.ObjectKey{Namespace: o.GetNamespace(), Name: ref.Name}}}
}

// forPod queues every budget of the pod's namespace that lists its
// service (a member, or a former one whose pods are still counted).
func (r *Reconciler) forPod(ctx context.Context, o client.Object) []ctrl.Request {
	name := o.GetLabels()[render.LabelInstance]
	if name == "" {
		return nil
	}
	var list pacerv1.ConnectionBudgetList
	if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var reqs []ctrl.Request
	for _, b := range list.Items {
		if slices.ContainsFunc(b.Status.Members, func(m pacerv1.BudgetMember) bool { return m.Name == name }) {
			reqs = append(reqs, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(&b)})
		}
	}
	return reqs
}
