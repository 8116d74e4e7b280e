package controllers

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// TestAPIServerValidation sends TunedServices as a user's YAML would (not
// through Go types, which cannot express every mistake) and checks that the
// API server accepts the good ones and rejects each bad one with a message
// a person understands. Every OpenAPI and CEL rule has a rejected case.
func TestAPIServerValidation(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	ns := s.namespace(t)

	const db = "database: {urlSecretRef: {name: db, key: url}}\n"
	cases := []struct {
		name    string
		objName string // default "valid"
		spec    string
		wantErr string // "" means accepted
	}{
		{name: "three-line spec", spec: db},
		{name: "everything set", spec: `
image: registry.example/pacer-api:v1
replicas: 2
resources: {requests: {cpu: 200m, memory: 128Mi}, limits: {memory: 256Mi}}
pod:
  nodeSelector: {disk: ssd}
  tolerations: [{key: dedicated, operator: Exists}]
  imagePullSecrets: [{name: registry}]
  serviceAccountName: users-pods
  topologySpreadConstraints: [{maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}]
workers: {maxInFlight: 32, queueDepth: 0, queueTimeout: 100ms}
database:
  urlSecretRef: {name: db, key: url}
  pool: {minConns: 1, maxConns: 8, maxConnLifetime: 1h, maxConnIdleTime: 10m, healthCheckPeriod: 15s}
  statementTimeout: 1s
  maxTotalConnections: 40
rateLimit: {requestsPerSecond: 100, burst: 200, clientKey: Header, header: X-Api-Key, trustedProxies: [10.0.0.0/8, "fd00::/8"]}
cache: {ttl: 1m, maxEntries: 5000, redis: {urlSecretRef: {name: redis, key: url}}}
requestTimeout: 2s
shutdownGracePeriod: 30s
tuning:
  mode: Auto
  interval: 15s
  objective: {latencyP99: 50ms, targetUtilization: 60}
  bounds: {replicas: {min: 1, max: 5}, workers: {min: 4, max: 128}, poolMaxConns: {min: 2, max: 8}, cacheMaxEntries: {min: 0, max: 100000}}
  stabilization: {scaleUp: 0s, scaleDown: 3m}
  metrics: {source: Prometheus, prometheusURL: "http://prometheus.monitoring.svc:9090", authSecretRef: {name: prometheus-auth}}
`},
		{name: "database is required", spec: "replicas: 1\n", wantErr: "spec.database: Required value"},
		{name: "secret name must be a DNS name", spec: "database: {urlSecretRef: {name: Bad_Name, key: url}}\n", wantErr: "spec.database.urlSecretRef.name"},
		{name: "secret key is required", spec: "database: {urlSecretRef: {name: db}}\n", wantErr: "spec.database.urlSecretRef.key: Required value"},
		{name: "name must be a DNS label", objName: "has.dots", spec: db, wantErr: "name must be a DNS label"},
		{name: "name at most 63 characters", objName: strings.Repeat("a", 64), spec: db, wantErr: "name must be a DNS label"},
		{name: "negative replicas", spec: db + "replicas: -1\n", wantErr: "spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"},
		{name: "empty image", spec: db + "image: \"\"\n", wantErr: "spec.image"},
		{name: "no workers", spec: db + "workers: {maxInFlight: 0}\n", wantErr: "spec.workers.maxInFlight"},
		{name: "negative queue", spec: db + "workers: {queueDepth: -1}\n", wantErr: "spec.workers.queueDepth"},
		{name: "malformed duration", spec: db + "workers: {queueTimeout: fast}\n", wantErr: "must be a duration such as 250ms"},
		{name: "duration without unit", spec: db + "requestTimeout: \"5\"\n", wantErr: "must be a duration such as 250ms"},
		{name: "zero request timeout", spec: db + "requestTimeout: 0s\n", wantErr: "requestTimeout must be positive"},
		{name: "long grace period", spec: db + "shutdownGracePeriod: 2h\n", wantErr: "shutdownGracePeriod must be at most 1h"},
		{name: "pool min above max", spec: "database: {urlSecretRef: {name: db, key: url}, pool: {minConns: 10, maxConns: 5}}\n", wantErr: "minConns must not exceed maxConns"},
		{name: "pool min above default max", spec: "database: {urlSecretRef: {name: db, key: url}, pool: {minConns: 20}}\n", wantErr: "minConns must not exceed maxConns"},
		{name: "zero pool max", spec: "database: {urlSecretRef: {name: db, key: url}, pool: {maxConns: 0}}\n", wantErr: "spec.database.pool.maxConns"},
		{name: "zero lifetime", spec: "database: {urlSecretRef: {name: db, key: url}, pool: {maxConnLifetime: 0s}}\n", wantErr: "maxConnLifetime must be positive"},
		{name: "zero idle time", spec: "database: {urlSecretRef: {name: db, key: url}, pool: {maxConnIdleTime: 0s}}\n", wantErr: "maxConnIdleTime must be positive"},
		{name: "zero health check", spec: "database: {urlSecretRef: {name: db, key: url}, pool: {healthCheckPeriod: 0s}}\n", wantErr: "healthCheckPeriod must be positive"},
		{name: "zero budget", spec: "database: {urlSecretRef: {name: db, key: url}, maxTotalConnections: 0}\n", wantErr: "spec.database.maxTotalConnections"},
		{name: "replicas times pool over budget", spec: "replicas: 4\ndatabase: {urlSecretRef: {name: db, key: url}, maxTotalConnections: 50}\n", wantErr: "replicas × (database.pool.maxConns + 1 health connection) must not exceed database.maxTotalConnections"},
		{name: "replicas times pool within budget", spec: "replicas: 3\ndatabase: {urlSecretRef: {name: db, key: url}, maxTotalConnections: 51}\n"},
		// 3 × 16 = 48 is what the pools hold; each pod's /readyz connection makes it 51.
		{name: "replicas times pool within budget without the health connections", spec: "replicas: 3\ndatabase: {urlSecretRef: {name: db, key: url}, maxTotalConnections: 48}\n", wantErr: "+ 1 health connection"},
		{name: "replica bounds over budget", spec: "database: {urlSecretRef: {name: db, key: url}, pool: {maxConns: 4}, maxTotalConnections: 50}\ntuning: {bounds: {replicas: {min: 1, max: 10}, poolMaxConns: {min: 8, max: 16}}}\n", wantErr: "tuning.bounds.replicas.max × (the smallest allowed pool size + 1 health connection)"},
		{name: "replica bounds over budget with fixed pool", spec: "database: {urlSecretRef: {name: db, key: url}, maxTotalConnections: 50}\ntuning: {bounds: {replicas: {min: 1, max: 4}}}\n", wantErr: "tuning.bounds.replicas.max × (the smallest allowed pool size + 1 health connection)"},
		{name: "negative rate", spec: db + "rateLimit: {requestsPerSecond: -5}\n", wantErr: "spec.rateLimit.requestsPerSecond"},
		{name: "zero burst", spec: db + "rateLimit: {requestsPerSecond: 5, burst: 0}\n", wantErr: "spec.rateLimit.burst"},
		{name: "unknown client key", spec: db + "rateLimit: {clientKey: Cookie}\n", wantErr: `spec.rateLimit.clientKey: Unsupported value: "Cookie"`},
		{name: "header key without header", spec: db + "rateLimit: {clientKey: Header}\n", wantErr: "header is required when clientKey is Header"},
		{name: "header with a space", spec: db + "rateLimit: {clientKey: Header, header: \"X Key\"}\n", wantErr: "spec.rateLimit.header"},
		{name: "bad proxy CIDR", spec: db + "rateLimit: {trustedProxies: [10.0.0.0/33]}\n", wantErr: "trustedProxies must be CIDRs"},
		{name: "malformed cache ttl", spec: db + "cache: {ttl: forever}\n", wantErr: "must be a duration such as 250ms"},
		{name: "negative cache size", spec: db + "cache: {maxEntries: -1}\n", wantErr: "spec.cache.maxEntries"},
		{name: "redis without secret", spec: db + "cache: {redis: {}}\n", wantErr: "spec.cache.redis.urlSecretRef: Required value"},
		{name: "unknown mode", spec: db + "tuning: {mode: Sometimes}\n", wantErr: `spec.tuning.mode: Unsupported value: "Sometimes"`},
		// Every mode is safe to write bare in YAML; "Off" only quoted, since
		// bare Off is YAML 1.1's false (sigs.k8s.io/yaml reads it so, as kubectl does).
		{name: "bare Disabled", spec: db + "tuning: {mode: Disabled}\n"},
		{name: "bare Hold", spec: db + "tuning: {mode: Hold}\n"},
		{name: "bare Recommend", spec: db + "tuning: {mode: Recommend}\n"},
		{name: "quoted Off still works", spec: db + "tuning: {mode: \"Off\"}\n"},
		{name: "bare Off is a boolean", spec: db + "tuning: {mode: Off}\n", wantErr: "spec.tuning.mode"},
		{name: "replicas bound at zero", spec: db + "tuning: {bounds: {replicas: {min: 0, max: 2}}}\n", wantErr: "replicas.min must be at least 1: Pacer does not scale to zero"},
		{name: "interval too short", spec: db + "tuning: {interval: 1s}\n", wantErr: "interval must be between 5s and 1h"},
		{name: "zero objective", spec: db + "tuning: {objective: {latencyP99: 0ms}}\n", wantErr: "latencyP99 must be between 1ms and 1m"},
		{name: "utilization above 95", spec: db + "tuning: {objective: {targetUtilization: 100}}\n", wantErr: "spec.tuning.objective.targetUtilization"},
		{name: "bounds min above max", spec: db + "tuning: {bounds: {workers: {min: 5, max: 2}}}\n", wantErr: "min must not exceed max"},
		{name: "bounds without max", spec: db + "tuning: {bounds: {workers: {min: 5}}}\n", wantErr: "spec.tuning.bounds.workers.max: Required value"},
		{name: "zero workers bound", spec: db + "tuning: {bounds: {workers: {min: 0, max: 2}}}\n", wantErr: "workers.min must be at least 1"},
		{name: "zero pool bound", spec: db + "tuning: {bounds: {poolMaxConns: {min: 0, max: 2}}}\n", wantErr: "poolMaxConns.min must be at least 1"},
		{name: "negative bound", spec: db + "tuning: {bounds: {cacheMaxEntries: {min: -1, max: 2}}}\n", wantErr: "spec.tuning.bounds.cacheMaxEntries.min"},
		{name: "bound above any setting's maximum", spec: db + "tuning: {bounds: {cacheMaxEntries: {min: 0, max: 2000000000}}}\n", wantErr: "spec.tuning.bounds.cacheMaxEntries.max"},
		{name: "replica bound above 1000", spec: db + "tuning: {bounds: {replicas: {min: 1, max: 5000}}}\n", wantErr: "replicas.max must be at most 1000"},
		{name: "workers bound above 100000", spec: db + "tuning: {bounds: {workers: {min: 1, max: 200000}}}\n", wantErr: "workers.max must be at most 100000"},
		{name: "pool bound above 10000", spec: db + "tuning: {bounds: {poolMaxConns: {min: 1, max: 20000}}}\n", wantErr: "poolMaxConns.max must be at most 10000"},
		{name: "long stabilization", spec: db + "tuning: {stabilization: {scaleDown: 2h}}\n", wantErr: "scaleDown must be at most 1h"},
		{name: "long scale-up window", spec: db + "tuning: {stabilization: {scaleUp: 61m}}\n", wantErr: "scaleUp must be at most 1h"},
		{name: "prometheus without URL", spec: db + "tuning: {metrics: {source: Prometheus}}\n", wantErr: "prometheusURL is required when source is Prometheus"},
		{name: "prometheus URL not http", spec: db + "tuning: {metrics: {source: Prometheus, prometheusURL: \"ftp://prom:21\"}}\n", wantErr: "prometheusURL must be an http or https URL"},
		{name: "auth without Prometheus", spec: db + "tuning: {metrics: {authSecretRef: {name: auth}}}\n", wantErr: "authSecretRef applies only to source Prometheus"},
		{name: "bad service account name", spec: db + "pod: {serviceAccountName: Not_A_Name}\n", wantErr: "spec.pod.serviceAccountName"},
		{name: "too many pull secrets", spec: db + "pod: {imagePullSecrets: [" + strings.Repeat("{name: a},", 16) + "{name: a}]}\n", wantErr: "spec.pod.imagePullSecrets"},
		{name: "unknown metrics source", spec: db + "tuning: {metrics: {source: Graphite}}\n", wantErr: `Unsupported value: "Graphite"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			obj := unstructuredTunedService(t, ns, tc.objName, tc.spec)
			err := s.client.Create(context.Background(), obj, client.DryRunAll)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("rejected a valid spec: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted an invalid spec; want an error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q does not contain %q", err, tc.wantErr)
			}
		})
	}
}

// TestDefaultsMakeAThreeLineSpecComplete checks what the API server fills in.
func TestDefaultsMakeAThreeLineSpecComplete(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	ns := s.namespace(t)
	obj := unstructuredTunedService(t, ns, "defaults", "database: {urlSecretRef: {name: db, key: url}}\n")
	if err := s.client.Create(context.Background(), obj, client.DryRunAll); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]any{
		"spec.replicas":                           int64(1),
		"spec.workers.maxInFlight":                int64(64),
		"spec.workers.queueDepth":                 int64(256),
		"spec.workers.queueTimeout":               "250ms",
		"spec.database.pool.minConns":             int64(2),
		"spec.database.pool.maxConns":             int64(16),
		"spec.database.statementTimeout":          "2s",
		"spec.rateLimit.requestsPerSecond":        int64(0),
		"spec.rateLimit.clientKey":                "IP",
		"spec.cache.ttl":                          "30s",
		"spec.cache.maxEntries":                   int64(10000),
		"spec.requestTimeout":                     "5s",
		"spec.shutdownGracePeriod":                "20s",
		"spec.tuning.mode":                        "Recommend",
		"spec.tuning.interval":                    "30s",
		"spec.tuning.objective.latencyP99":        "100ms",
		"spec.tuning.objective.targetUtilization": int64(70),
		"spec.tuning.stabilization.scaleDown":     "5m",
		"spec.tuning.metrics.source":              "Pods",
	} {
		got, found, err := unstructured.NestedFieldNoCopy(obj.Object, strings.Split(path, ".")...)
		if err != nil || !found {
			t.Errorf("%s: not defaulted (err %v)", path, err)
			continue
		}
		if got != want {
			t.Errorf("%s = %v (%T), want %v (%T)", path, got, got, want, want)
		}
	}
	// No image is written into the object: the operator's own image for
	// its version applies, and moves when the operator is upgraded.
	if image, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "image"); found {
		t.Errorf("spec.image defaulted to %v; want it left unset", image)
	}
}

func unstructuredTunedService(t *testing.T, ns, name, specYAML string) *unstructured.Unstructured {
	t.Helper()
	if name == "" {
		name = "valid"
	}
	spec := map[string]any{}
	if err := yaml.Unmarshal([]byte(specYAML), &spec); err != nil {
		t.Fatalf("test spec is not YAML: %v", err)
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "tuning.pacer.dev/v1alpha1",
		"kind":       "TunedService",
		"metadata":   map[string]any{"namespace": ns, "name": name},
		"spec":       spec,
	}}
}

// TestSamplesAreValid applies every file in config/samples, as
// `kubectl apply -f config/samples/` would, with a server-side dry run.
func TestSamplesAreValid(t *testing.T) {
	t.Parallel()
	s := startSuite(t)
	ns := s.namespace(t)
	files, err := filepath.Glob(filepath.Join("..", "config", "samples", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples found: %v", err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(data, &obj.Object); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		obj.SetNamespace(ns)
		if err := s.client.Create(context.Background(), obj, client.DryRunAll); err != nil {
			t.Errorf("%s is rejected: %v", f, err)
		}
		kinds[obj.GetKind()]++
	}
	if kinds["TunedService"] == 0 {
		t.Error("no TunedService sample")
	}
}
