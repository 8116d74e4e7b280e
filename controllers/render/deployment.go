package render

import (
	"cmp"
	"maps"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
	"github.com/pacer-dev/pacer/service/config"
)

// Environment variables pacer-api reads its secrets from.
const (
	EnvDatabaseURL = "DATABASE_URL"
	EnvRedisURL    = "REDIS_URL"
)

// Pod lifecycle timings.
const (
	// drainDelay keeps a stopping pod serving while Services and load
	// balancers stop sending it traffic, before pacer-api begins its own
	// shutdown. It is a preStop sleep, which needs no shell in the image.
	drainDelay = 5 * time.Second
	// killMargin is extra time after the grace period before SIGKILL.
	killMargin = 5 * time.Second
	// runAsUser is distroless's nonroot user.
	runAsUser = 65532
)

// DeploymentInput is what the Deployment depends on besides the spec.
type DeploymentInput struct {
	// Replicas is the number of pods in effect (spec or tuner).
	Replicas int32
	// PoolMaxConns is each pod's pool size in effect.
	PoolMaxConns int32
	// RestartHash changes when pods must restart to pick something up.
	RestartHash string
	// MaxTotalConnections is the connection budget in effect when it is
	// not spec.database.maxTotalConnections alone: the allocation of a
	// ConnectionBudget member. Nil means the spec's.
	MaxTotalConnections *int32
	// DefaultImage is the image when spec.image is empty: the operator's
	// own pacer-api image; empty means pacerv1.DefaultImage.
	DefaultImage string
}

// Deployment is the desired Deployment of ts. Like every builder here it
// shares no map or slice with ts or package state: the client decodes the
// server's answer into the apply configuration it was given.
func Deployment(ts *pacerv1.TunedService, in DeploymentInput) *appsv1ac.DeploymentApplyConfiguration {
	return appsv1ac.Deployment(ts.Name, ts.Namespace).
		WithLabels(Labels(ts)).
		WithOwnerReferences(OwnerReference(ts)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(in.Replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(ts))).
			WithStrategy(appsv1ac.DeploymentStrategy().
				WithType(appsv1.RollingUpdateDeploymentStrategyType).
				WithRollingUpdate(rollingUpdate(in.Replicas, in.PoolMaxConns, cmp.Or(in.MaxTotalConnections, ts.Spec.Database.MaxTotalConnections)))).
			WithTemplate(podTemplate(ts, in)))
}

// rollingUpdate never drops below the wanted capacity during a rollout
// (extra pods first), unless the database's connection budget has no room
// for an extra pod's connections (its pool and its health pool): then pods
// are replaced one at a time, so the pods' connections never exceed the
// budget even mid-rollout.
func rollingUpdate(replicas, pool int32, budget *int32) *appsv1ac.RollingUpdateDeploymentApplyConfiguration {
	ru := appsv1ac.RollingUpdateDeployment()
	if budget == nil || pool <= 0 {
		return ru.WithMaxUnavailable(intstr.FromInt32(0)).WithMaxSurge(intstr.FromString("25%"))
	}
	per := tuning.PodConnections(pool) // the request pool and the health pool
	if spare := (int64(*budget) - tuning.WorstCaseConnections(replicas, pool)) / per; spare >= 1 {
		quarter := max(1, (replicas+3)/4)
		return ru.WithMaxUnavailable(intstr.FromInt32(0)).WithMaxSurge(intstr.FromInt32(int32(min(spare, int64(quarter)))))
	}
	return ru.WithMaxUnavailable(intstr.FromInt32(1)).WithMaxSurge(intstr.FromInt32(0))
}

func podTemplate(ts *pacerv1.TunedService, in DeploymentInput) *corev1ac.PodTemplateSpecApplyConfiguration {
	extras := ptr.Deref(ts.Spec.Pod, pacerv1.PodExtras{})

	labels := maps.Clone(extras.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, Labels(ts)) // Pacer's labels win: the selector depends on them.

	annotations := maps.Clone(extras.Annotations)
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationRestartHash] = in.RestartHash

	grace := dur(ts.Spec.ShutdownGracePeriod, config.Default().Server.ShutdownGracePeriod).Duration

	spec := corev1ac.PodSpec().
		WithContainers(container(ts, cmp.Or(ts.Spec.Image, in.DefaultImage, pacerv1.DefaultImage))).
		WithVolumes(corev1ac.Volume().
			WithName("config").
			WithConfigMap(corev1ac.ConfigMapVolumeSource().
				WithName(ConfigMapName(ts)).
				WithDefaultMode(0o444))).
		WithSecurityContext(corev1ac.PodSecurityContext().
			WithRunAsNonRoot(true).
			WithRunAsUser(runAsUser).
			WithRunAsGroup(runAsUser).
			WithSeccompProfile(corev1ac.SeccompProfile().WithType(corev1.SeccompProfileTypeRuntimeDefault))).
		// pacer-api never calls the Kubernetes API: give it no token.
		WithAutomountServiceAccountToken(false).
		WithEnableServiceLinks(false).
		WithTerminationGracePeriodSeconds(seconds(drainDelay + grace + killMargin))

	if len(extras.NodeSelector) > 0 {
		spec.WithNodeSelector(maps.Clone(extras.NodeSelector))
	}
	for i := range extras.Tolerations {
		spec.WithTolerations(toleration(extras.Tolerations[i]))
	}
	if extras.PriorityClassName != "" {
		spec.WithPriorityClassName(extras.PriorityClassName)
	}
	if extras.Affinity != nil {
		spec.WithAffinity(affinity(extras.Affinity))
	}
	for _, ref := range extras.ImagePullSecrets {
		spec.WithImagePullSecrets(corev1ac.LocalObjectReference().WithName(ref.Name))
	}
	for i := range extras.TopologySpreadConstraints {
		c := topologySpread(extras.TopologySpreadConstraints[i])
		if c.LabelSelector == nil {
			// Spread this service's own pods unless told otherwise.
			c.WithLabelSelector(metav1ac.LabelSelector().WithMatchLabels(SelectorLabels(ts)))
		}
		spec.WithTopologySpreadConstraints(c)
	}
	if extras.ServiceAccountName != "" {
		spec.WithServiceAccountName(extras.ServiceAccountName)
	}

	return corev1ac.PodTemplateSpec().
		WithLabels(labels).
		WithAnnotations(annotations).
		WithSpec(spec)
}

func container(ts *pacerv1.TunedService, image string) *corev1ac.ContainerApplyConfiguration {
	c := corev1ac.Container().
		WithName(ContainerName).
		WithImage(image).
		WithArgs("--config="+ConfigMountPath+"/"+ConfigKey).
		WithPorts(
			corev1ac.ContainerPort().WithName("http").WithContainerPort(APIPort).WithProtocol(corev1.ProtocolTCP),
			corev1ac.ContainerPort().WithName("admin").WithContainerPort(AdminPort).WithProtocol(corev1.ProtocolTCP),
		).
		WithEnv(env(ts)...).
		WithVolumeMounts(corev1ac.VolumeMount().WithName("config").WithMountPath(ConfigMountPath).WithReadOnly(true)).
		WithReadinessProbe(probe("/readyz", 5, 3)).
		WithLivenessProbe(probe("/healthz", 10, 3)).
		WithLifecycle(corev1ac.Lifecycle().
			WithPreStop(corev1ac.LifecycleHandler().
				WithSleep(corev1ac.SleepAction().WithSeconds(seconds(drainDelay))))).
		WithSecurityContext(corev1ac.SecurityContext().
			WithAllowPrivilegeEscalation(false).
			WithReadOnlyRootFilesystem(true).
			WithRunAsNonRoot(true).
			WithCapabilities(corev1ac.Capabilities().WithDrop("ALL")))
	c.WithResources(resources(ts.Spec.Resources))
	return c
}

func env(ts *pacerv1.TunedService) []*corev1ac.EnvVarApplyConfiguration {
	vars := []*corev1ac.EnvVarApplyConfiguration{
		secretEnv(EnvDatabaseURL, ts.Spec.Database.URLSecretRef),
	}
	if r := ts.Spec.Cache.Redis; r != nil {
		vars = append(vars, secretEnv(EnvRedisURL, r.URLSecretRef))
	}
	if r := ts.Spec.Resources; r != nil && r.Limits.Memory() != nil && !r.Limits.Memory().IsZero() {
		// Let the Go GC work harder before the container hits its memory limit.
		vars = append(vars, corev1ac.EnvVar().WithName("GOMEMLIMIT").
			WithValueFrom(corev1ac.EnvVarSource().WithResourceFieldRef(
				corev1ac.ResourceFieldSelector().WithContainerName(ContainerName).WithResource("limits.memory"))))
	}
	return vars
}

func secretEnv(name string, ref pacerv1.SecretKeyRef) *corev1ac.EnvVarApplyConfiguration {
	return corev1ac.EnvVar().WithName(name).WithValueFrom(corev1ac.EnvVarSource().
		WithSecretKeyRef(corev1ac.SecretKeySelector().WithName(ref.Name).WithKey(ref.Key)))
}

func probe(path string, periodSeconds, failures int32) *corev1ac.ProbeApplyConfiguration {
	return corev1ac.Probe().
		WithHTTPGet(corev1ac.HTTPGetAction().WithPath(path).WithPort(intstr.FromString("admin"))).
		WithPeriodSeconds(periodSeconds).
		WithTimeoutSeconds(2).
		WithFailureThreshold(failures)
}

// DefaultCPURequest is the CPU a pod requests when the spec names no resources.
var DefaultCPURequest = mustQuantity("100m")

// defaultResources are requested when the spec names none, so the
// scheduler and the tuner's CPU figures have something to go by.
var defaultResources = corev1.ResourceRequirements{
	Requests: corev1.ResourceList{
		corev1.ResourceCPU:    DefaultCPURequest,
		corev1.ResourceMemory: mustQuantity("64Mi"),
	},
}

func resources(r *corev1.ResourceRequirements) *corev1ac.ResourceRequirementsApplyConfiguration {
	if r == nil {
		r = &defaultResources
	}
	ac := corev1ac.ResourceRequirements()
	if len(r.Requests) > 0 {
		ac.WithRequests(r.Requests.DeepCopy())
	}
	if len(r.Limits) > 0 {
		ac.WithLimits(r.Limits.DeepCopy())
	}
	return ac
}
