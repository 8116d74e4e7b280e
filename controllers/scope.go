package controllers

import (
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
)

// scope gathers what one reconcile pass of one TunedService knows.
type scope struct {
	ts     *pacerv1.TunedService
	before *pacerv1.TunedService // as read, for the status patch

	// secretVersions maps each referenced Secret to its resourceVersion.
	secretVersions map[string]string
	// allocation is the connections the service's ConnectionBudget gives
	// it; 0 when it joins none.
	allocation int32
	// hpa is the HorizontalPodAutoscaler that targets the service, if any.
	hpa *autoscaler
	// autoscaled is the Autoscaled condition, when an HPA targets the service.
	autoscaled *metav1.Condition
	// settings are the tunable settings rendered this pass.
	settings pacerv1.Settings
	// configGeneration and configHash describe the rendered config.
	configGeneration int64
	configHash       string
	// deployment is the Deployment as last read or written.
	deployment *appsv1.Deployment
	// problems are reasons the desired state cannot be reached right now.
	problems []problem
	// tuned is the Tuned condition the tuning step computed, if it ran.
	tuned *metav1.Condition
	// requeueAfter is when the next tuning interval is due.
	requeueAfter time.Duration
	// stopped says a step found the rest of the pass unsafe to render.
	stopped bool
}

// problem is something outside Pacer's control that blocks part of the
// desired state; it surfaces as the Degraded condition and, when it is new,
// a Warning Event.
type problem struct {
	reason  string
	message string
	// regarding is the object in the way, if any.
	regarding client.Object
}

func newScope(ts *pacerv1.TunedService) *scope {
	return &scope{ts: ts, before: ts.DeepCopy(), secretVersions: map[string]string{}}
}
