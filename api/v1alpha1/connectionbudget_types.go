package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// Condition types and reasons of a ConnectionBudget.
const (
	// ConditionReady is True when every member's guaranteed minimum fits
	// and the budget's allocations are written.
	ConditionReady = "Ready"
	// ConditionOvercommitted is True when the members' guaranteed minimums
	// do not fit in the room: the newest members are refused.
	ConditionOvercommitted = "Overcommitted"
)

// ConnectionBudgetSpec is the room several TunedServices share on one database.
//
// +kubebuilder:validation:XValidation:rule="self.reserved < self.maxConnections",message="reserved must be less than maxConnections: the budget would leave no room for its members"
type ConnectionBudgetSpec struct {
	// maxConnections is how many connections the members and the reserved
	// clients may hold at once: the server's max_connections less its
	// superuser_reserved_connections, or less if the database serves
	// more than this namespace.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +required
	MaxConnections int32 `json:"maxConnections"`

	// reserved is the room kept for clients that are not Pacer's:
	// migrations, admin sessions, other applications.
	// +kubebuilder:default=0
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	Reserved int32 `json:"reserved,omitempty"`

	// database names the Secret key that holds the database's URL, the
	// same reference the members' spec.database.urlSecretRef use. It
	// identifies the database: a second budget in the namespace that
	// names the same key is refused.
	// +optional
	Database *SecretKeyRef `json:"database,omitempty"`
}

// BudgetMemberState says where a member stands in its budget.
// +kubebuilder:validation:Enum=Admitted;Refused;Leaving
type BudgetMemberState string

const (
	// MemberAdmitted: the member's minimum is guaranteed.
	MemberAdmitted BudgetMemberState = "Admitted"
	// MemberRefused: the member's minimum does not fit; it gets no room
	// and none of its pods are rendered until it fits.
	MemberRefused BudgetMemberState = "Refused"
	// MemberLeaving: the member left the budget (deleted, or its budgetRef
	// changed) but its pods may still hold connections: counted until
	// they are gone.
	MemberLeaving BudgetMemberState = "Leaving"
)

// BudgetMember is one member's share of the budget.
type BudgetMember struct {
	// name of the TunedService.
	Name string `json:"name"`
	// state is Admitted, Refused or Leaving.
	State BudgetMemberState `json:"state"`
	// guaranteed is the member's minimum, held for it whatever the others need.
	Guaranteed int32 `json:"guaranteed"`
	// allocated is the connections the member's pods may hold at most,
	// health pools, surge and terminating pods included. Its tuner plans
	// within it as within database.maxTotalConnections.
	Allocated int32 `json:"allocated"`
	// target is what the division gives the member once the cuts it
	// waits for are seen; allocated moves toward it.
	// +optional
	Target int32 `json:"target,omitempty"`
	// worstCaseInUse is the most connections the member's pods may hold
	// now: the pods that exist (terminating ones included) or the
	// replicas in effect, whichever is more, times each pod's pool (the
	// one a rollout may still hold, if larger) plus its health pool.
	WorstCaseInUse int32 `json:"worstCaseInUse"`
	// pods is the number of the member's pods that exist now.
	// +optional
	Pods int32 `json:"pods,omitempty"`
	// podConnections is the most connections one of its pods may hold.
	// +optional
	PodConnections int32 `json:"podConnections,omitempty"`
	// message says why a member is refused or waits.
	// +optional
	Message string `json:"message,omitempty"`
}

// ConnectionBudgetStatus is how the budget is divided now.
type ConnectionBudgetStatus struct {
	// observedGeneration is the spec generation the last division acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// allocated is the sum of the members' allocations, or of their worst
	// case in use where that is more (a cut not yet seen), plus what
	// leaving members' pods may hold.
	// +optional
	Allocated int32 `json:"allocated"`
	// free is maxConnections less reserved less allocated.
	// +optional
	Free int32 `json:"free"`
	// memberCount is the number of admitted members.
	// +optional
	MemberCount int32 `json:"memberCount"`
	// members lists each member's share, by name.
	// +listType=map
	// +listMapKey=name
	// +optional
	Members []BudgetMember `json:"members,omitempty"`
	// conditions are Ready and Overcommitted.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConnectionBudget is the connection room on one database that several
// TunedServices share. Each member is guaranteed its minimum; the rest is
// divided by weight and by need, and moves with load: cuts are applied and
// seen before the room they free is granted to another member.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=cbudget,categories=pacer
// +kubebuilder:printcolumn:name="Max",type=integer,JSONPath=`.spec.maxConnections`
// +kubebuilder:printcolumn:name="Reserved",type=integer,JSONPath=`.spec.reserved`
// +kubebuilder:printcolumn:name="Allocated",type=integer,JSONPath=`.status.allocated`
// +kubebuilder:printcolumn:name="Free",type=integer,JSONPath=`.status.free`
// +kubebuilder:printcolumn:name="Members",type=integer,JSONPath=`.status.memberCount`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Overcommitted",type=string,JSONPath=`.status.conditions[?(@.type=="Overcommitted")].status`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ConnectionBudget struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the room and what it is kept for.
	// +required
	Spec ConnectionBudgetSpec `json:"spec"`

	// status is how the room is divided now.
	// +optional
	Status ConnectionBudgetStatus `json:"status,omitempty"`
}

// ConnectionBudgetList is a list of ConnectionBudgets.
//
// +kubebuilder:object:root=true
type ConnectionBudgetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ConnectionBudget `json:"items"`
}

// BudgetRef joins a TunedService to a ConnectionBudget in its namespace.
//
// +kubebuilder:validation:XValidation:rule="!has(self.max) || self.min <= self.max",message="budgetRef.min must not exceed budgetRef.max"
type BudgetRef struct {
	// name of the ConnectionBudget, in the TunedService's namespace.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +required
	Name string `json:"name"`
	// min is the connections guaranteed to this service, health pools
	// included: at least its smallest pods (replicas × (pool + 1)).
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +required
	Min int32 `json:"min"`
	// weight is the service's share of the room beyond the minimums,
	// relative to the other members' weights, when they all want more.
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000
	// +optional
	Weight int32 `json:"weight,omitempty"`
	// max is the most this service may be given, even when the others
	// leave room unused.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	// +optional
	Max *int32 `json:"max,omitempty"`
}
