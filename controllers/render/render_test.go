package render

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/controllers/tuning"
	"github.com/pacer-dev/pacer/service/config"
)

func tunedService(mutate ...func(*pacerv1.TunedService)) *pacerv1.TunedService {
	ts := &pacerv1.TunedService{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "users", UID: "uid-1"},
		Spec: pacerv1.TunedServiceSpec{
			Image:    "registry.example/pacer-api:v1",
			Database: pacerv1.DatabaseSpec{URLSecretRef: pacerv1.SecretKeyRef{Name: "db", Key: "url"}},
		},
	}
	for _, m := range mutate {
		m(ts)
	}
	return ts
}

func TestSpecSettings(t *testing.T) {
	tests := []struct {
		name string
		spec func(*pacerv1.TunedService)
		want pacerv1.Settings
	}{{
		name: "undefaulted spec falls back to pacer-api defaults",
		spec: func(*pacerv1.TunedService) {},
		want: pacerv1.Settings{Replicas: 1, MaxInFlight: 64, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 10000},
	}, {
		name: "explicit zeros are kept, not defaulted",
		spec: func(ts *pacerv1.TunedService) {
			ts.Spec.Replicas = ptr.To[int32](0)
			ts.Spec.Workers.QueueDepth = ptr.To[int32](0)
			ts.Spec.Database.Pool.MinConns = ptr.To[int32](0)
			ts.Spec.Cache.MaxEntries = ptr.To[int32](0)
		},
		want: pacerv1.Settings{Replicas: 0, MaxInFlight: 64, QueueDepth: 0, PoolMinConns: 0, PoolMaxConns: 16, CacheMaxEntries: 0},
	}, {
		name: "burst defaults to one second of the rate",
		spec: func(ts *pacerv1.TunedService) { ts.Spec.RateLimit.RequestsPerSecond = ptr.To[int32](40) },
		want: pacerv1.Settings{Replicas: 1, MaxInFlight: 64, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 10000, RateLimitRPS: 40, RateLimitBurst: 40},
	}, {
		name: "explicit burst wins",
		spec: func(ts *pacerv1.TunedService) {
			ts.Spec.RateLimit.RequestsPerSecond = ptr.To[int32](40)
			ts.Spec.RateLimit.Burst = ptr.To[int32](5)
		},
		want: pacerv1.Settings{Replicas: 1, MaxInFlight: 64, QueueDepth: 256, PoolMinConns: 2, PoolMaxConns: 16, CacheMaxEntries: 10000, RateLimitRPS: 40, RateLimitBurst: 5},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := tunedService(tc.spec)
			if diff := cmp.Diff(tc.want, SpecSettings(&ts.Spec)); diff != "" {
				t.Errorf("SpecSettings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServiceConfigIsValidAndCarriesTheSpec(t *testing.T) {
	ts := tunedService(func(ts *pacerv1.TunedService) {
		ts.Spec.RequestTimeout = &metav1.Duration{Duration: 2 * time.Second}
		ts.Spec.Workers.QueueTimeout = &metav1.Duration{Duration: 50 * time.Millisecond}
		ts.Spec.Database.StatementTimeout = &metav1.Duration{Duration: time.Second}
		ts.Spec.RateLimit = pacerv1.RateLimitSpec{ClientKey: pacerv1.ClientKeyHeader, Header: "X-Api-Key", TrustedProxies: []string{"10.0.0.0/8"}}
		ts.Spec.Cache.Redis = &pacerv1.RedisSpec{URLSecretRef: pacerv1.SecretKeyRef{Name: "redis", Key: "url"}}
	})
	s := pacerv1.Settings{Replicas: 2, MaxInFlight: 12, QueueDepth: 30, PoolMinConns: 8, PoolMaxConns: 4, CacheMaxEntries: 99, RateLimitRPS: 7, RateLimitBurst: 9}
	c := ServiceConfig(ts, s, 5)
	if err := c.Validate(); err != nil {
		t.Fatalf("rendered config is invalid: %v", err)
	}

	want := config.Default()
	want.Generation = 5
	want.Log.Format = "json"
	want.Server.RequestTimeout = config.D(2 * time.Second)
	want.Workers = config.Workers{MaxInFlight: 12, QueueDepth: 30, QueueTimeout: config.D(50 * time.Millisecond)}
	want.Database.MaxConns = 4
	want.Database.MinConns = 4 // clamped: the tuner shrank the pool below the spec's minimum
	want.Database.StatementTimeout = config.D(time.Second)
	want.RateLimit = config.RateLimit{RequestsPerSecond: 7, Burst: 9, ClientKey: config.ClientKeyHeader, Header: "X-Api-Key", TrustedProxies: []string{"10.0.0.0/8"}, MaxClients: want.RateLimit.MaxClients}
	want.Cache.MaxEntries = 99
	want.Cache.Redis = &config.Redis{URLEnv: "REDIS_URL", KeyPrefix: "pacer:shop/users:user:"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Errorf("ServiceConfig (-want +got):\n%s", diff)
	}
}

func TestConfigHashIgnoresGenerationOnly(t *testing.T) {
	a := config.Default()
	b := a
	b.Generation = 9
	if ConfigHash(a) != ConfigHash(b) {
		t.Error("a new generation alone changed the hash: every pass would bump it")
	}
	b.Workers.MaxInFlight++
	if ConfigHash(a) == ConfigHash(b) {
		t.Error("a changed setting kept the hash: pods would never see it")
	}
}

func TestConfigMapHoldsTheFileAndNoSecret(t *testing.T) {
	ts := tunedService()
	c := ServiceConfig(ts, SpecSettings(&ts.Spec), 3)
	cm, err := ConfigMap(ts, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := *cm.Name; got != "users-config" {
		t.Errorf("name = %q", got)
	}
	parsed, err := config.Parse([]byte(cm.Data[ConfigKey]))
	if err != nil {
		t.Fatalf("the ConfigMap's file does not parse: %v", err)
	}
	if diff := cmp.Diff(c, parsed); diff != "" {
		t.Errorf("file round trip (-rendered +parsed):\n%s", diff)
	}
	if cm.Annotations[AnnotationConfigGeneration] != "3" || cm.Annotations[AnnotationConfigHash] != ConfigHash(c) {
		t.Errorf("annotations = %v", cm.Annotations)
	}
	if strings.Contains(cm.Data[ConfigKey], "postgres://") {
		t.Error("a DSN in the ConfigMap")
	}
}

func TestDeploymentPodSecurityAndWiring(t *testing.T) {
	ts := tunedService(func(ts *pacerv1.TunedService) {
		ts.Spec.ShutdownGracePeriod = &metav1.Duration{Duration: 20 * time.Second}
		ts.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
		ts.Spec.Cache.Redis = &pacerv1.RedisSpec{URLSecretRef: pacerv1.SecretKeyRef{Name: "redis", Key: "url"}}
		ts.Spec.Pod = &pacerv1.PodExtras{
			Labels:      map[string]string{"team": "a", LabelInstance: "hijack"},
			Annotations: map[string]string{"note": "x"},
			Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}},
		}
	})
	d := Deployment(ts, DeploymentInput{Replicas: 3, RestartHash: "abc"})

	if *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %d", *d.Spec.Replicas)
	}
	if diff := cmp.Diff(SelectorLabels(ts), d.Spec.Selector.MatchLabels); diff != "" {
		t.Errorf("selector (-want +got):\n%s", diff)
	}
	tpl := d.Spec.Template
	if tpl.Labels[LabelInstance] != "users" || tpl.Labels["team"] != "a" {
		t.Errorf("pod labels = %v: Pacer's labels must win, extras must be kept", tpl.Labels)
	}
	if tpl.Annotations[AnnotationRestartHash] != "abc" || tpl.Annotations["note"] != "x" {
		t.Errorf("pod annotations = %v", tpl.Annotations)
	}

	pod := tpl.Spec
	if !*pod.SecurityContext.RunAsNonRoot || *pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Error("pod is not restricted: runAsNonRoot and RuntimeDefault seccomp required")
	}
	if *pod.AutomountServiceAccountToken {
		t.Error("pacer-api needs no service account token")
	}
	// preStop drain (5s) + grace (20s) + margin (5s).
	if *pod.TerminationGracePeriodSeconds != 30 {
		t.Errorf("terminationGracePeriodSeconds = %d, want 30", *pod.TerminationGracePeriodSeconds)
	}
	if len(pod.Tolerations) != 1 || *pod.Tolerations[0].Key != "dedicated" {
		t.Errorf("tolerations = %v", pod.Tolerations)
	}

	c := pod.Containers[0]
	sc := c.SecurityContext
	if *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Errorf("container security context is not restricted: %+v", sc)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[*e.Name] = "secret:" + *e.ValueFrom.SecretKeyRef.Name + "/" + *e.ValueFrom.SecretKeyRef.Key
		case e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil:
			env[*e.Name] = "resource:" + *e.ValueFrom.ResourceFieldRef.Resource
		default:
			env[*e.Name] = "value"
		}
	}
	wantEnv := map[string]string{
		"DATABASE_URL": "secret:db/url",
		"REDIS_URL":    "secret:redis/url",
		"GOMEMLIMIT":   "resource:limits.memory",
	}
	if diff := cmp.Diff(wantEnv, env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if *c.ReadinessProbe.HTTPGet.Path != "/readyz" || *c.LivenessProbe.HTTPGet.Path != "/healthz" ||
		c.ReadinessProbe.HTTPGet.Port.StrVal != "admin" {
		t.Error("probes must hit /readyz and /healthz on the admin port")
	}
	if c.Args[0] != "--config=/etc/pacer/config.yaml" {
		t.Errorf("args = %v", c.Args)
	}
}

// The client decodes the apply response into the apply configuration: a
// builder that aliased the spec's maps (or a package default) would let
// that write into the cached TunedService, racing other reconciles.
func TestDeploymentSharesNoMapWithItsInputs(t *testing.T) {
	ts := tunedService(func(ts *pacerv1.TunedService) {
		ts.Spec.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
		ts.Spec.Pod = &pacerv1.PodExtras{NodeSelector: map[string]string{"disk": "ssd"}}
	})
	before := ts.DeepCopy()
	d := Deployment(ts, DeploymentInput{Replicas: 1})
	pod := d.Spec.Template.Spec
	pod.NodeSelector["disk"] = "changed"
	(*pod.Containers[0].Resources.Requests)[corev1.ResourceCPU] = resource.MustParse("9")
	if diff := cmp.Diff(before, ts); diff != "" {
		t.Errorf("writing into the Deployment changed the TunedService (-before +after):\n%s", diff)
	}

	plain := Deployment(tunedService(), DeploymentInput{Replicas: 1}).Spec.Template.Spec.Containers[0]
	(*plain.Resources.Requests)[corev1.ResourceCPU] = resource.MustParse("9")
	again := Deployment(tunedService(), DeploymentInput{Replicas: 1}).Spec.Template.Spec.Containers[0]
	if got := (*again.Resources.Requests)[corev1.ResourceCPU]; got.Cmp(DefaultCPURequest) != 0 {
		t.Errorf("the default CPU request became %s: the builder shares the package default", got.String())
	}
}

func TestDeploymentDefaultsImageAndResources(t *testing.T) {
	ts := tunedService(func(ts *pacerv1.TunedService) { ts.Spec.Image = "" })
	if c := Deployment(ts, DeploymentInput{Replicas: 1, DefaultImage: "registry.example/pacer-api:v9"}).Spec.Template.Spec.Containers[0]; *c.Image != "registry.example/pacer-api:v9" {
		t.Errorf("image = %q, want the operator's own pacer-api image", *c.Image)
	}
	if c := Deployment(tunedService(), DeploymentInput{Replicas: 1, DefaultImage: "registry.example/pacer-api:v9"}).Spec.Template.Spec.Containers[0]; *c.Image != "registry.example/pacer-api:v1" {
		t.Errorf("image = %q, want spec.image", *c.Image)
	}
	c := Deployment(ts, DeploymentInput{Replicas: 1}).Spec.Template.Spec.Containers[0]
	if *c.Image != pacerv1.DefaultImage {
		t.Errorf("image = %q", *c.Image)
	}
	if c.Resources.Requests == nil || c.Resources.Requests.Cpu().IsZero() {
		t.Error("no CPU request: the scheduler and the tuner's CPU figures need one")
	}
	for _, e := range c.Env {
		if *e.Name == "GOMEMLIMIT" {
			t.Error("GOMEMLIMIT without a memory limit")
		}
	}
}

func TestRolloutsStayWithinTheConnectionBudget(t *testing.T) {
	tests := []struct {
		name                       string
		replicas, pool             int32
		budget                     *int32
		wantSurge, wantUnavailable string
	}{
		{"no budget: surge a quarter", 4, 16, nil, "25%", "0"},
		{"room for two extra pods: surge up to a quarter", 8, 10, ptr.To[int32](110), "2", "0"},
		{"each pod holds its pool and a health connection: room for one", 8, 10, ptr.To[int32](100), "1", "0"},
		{"pool 3 over 3 pods fills 12 with the health pools: no surge", 3, 3, ptr.To[int32](12), "0", "1"},
		{"room for one extra pool", 2, 10, ptr.To[int32](35), "1", "0"},
		{"no room: replace one at a time", 3, 16, ptr.To[int32](51), "0", "1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ru := rollingUpdate(tc.replicas, tc.pool, tc.budget)
			if got := ru.MaxSurge.String(); got != tc.wantSurge {
				t.Errorf("maxSurge = %s, want %s", got, tc.wantSurge)
			}
			if got := ru.MaxUnavailable.String(); got != tc.wantUnavailable {
				t.Errorf("maxUnavailable = %s, want %s", got, tc.wantUnavailable)
			}
			if tc.budget != nil {
				surge := int32(ru.MaxSurge.IntValue())
				if peak := tuning.WorstCaseConnections(tc.replicas+surge, tc.pool); peak > int64(*tc.budget) {
					t.Errorf("mid-rollout %d connections exceed the budget %d", peak, *tc.budget)
				}
			}
		})
	}
}

func TestPodDisruptionBudgetOnlyForSeveralPods(t *testing.T) {
	for replicas, want := range map[int32]bool{0: false, 1: false, 2: true, 10: true} {
		if got := WantsPDB(replicas); got != want {
			t.Errorf("WantsPDB(%d) = %v, want %v", replicas, got, want)
		}
	}
	pdb := PodDisruptionBudget(tunedService())
	if pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("maxUnavailable = %v", pdb.Spec.MaxUnavailable)
	}
}

func TestRestartHashChangesWithSecretVersionsOnly(t *testing.T) {
	a := RestartHash(map[string]string{"db": "10"})
	if a != RestartHash(map[string]string{"db": "10"}) {
		t.Error("hash is not stable")
	}
	if a == RestartHash(map[string]string{"db": "11"}) {
		t.Error("a rotated Secret must change the hash")
	}
}

func TestDeploymentPodExtras(t *testing.T) {
	ts := tunedService(func(ts *pacerv1.TunedService) {
		ts.Spec.Pod = &pacerv1.PodExtras{
			ImagePullSecrets:   []corev1.LocalObjectReference{{Name: "registry"}},
			ServiceAccountName: "users-pods",
			TopologySpreadConstraints: []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: "topology.kubernetes.io/zone", WhenUnsatisfiable: corev1.ScheduleAnyway,
			}},
		}
	})
	spec := Deployment(ts, DeploymentInput{Replicas: 3}).Spec.Template.Spec
	if len(spec.ImagePullSecrets) != 1 || *spec.ImagePullSecrets[0].Name != "registry" {
		t.Errorf("imagePullSecrets = %v", spec.ImagePullSecrets)
	}
	if spec.ServiceAccountName == nil || *spec.ServiceAccountName != "users-pods" {
		t.Errorf("serviceAccountName = %v", spec.ServiceAccountName)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Error("a service account must not bring a token: pacer-api never calls the API")
	}
	if len(spec.TopologySpreadConstraints) != 1 {
		t.Fatalf("topologySpreadConstraints = %v", spec.TopologySpreadConstraints)
	}
	c := spec.TopologySpreadConstraints[0]
	if *c.TopologyKey != "topology.kubernetes.io/zone" || c.LabelSelector == nil ||
		!maps.Equal(c.LabelSelector.MatchLabels, SelectorLabels(ts)) {
		t.Errorf("topology spread %+v: want the zone key and the pods' own selector", c)
	}
}
