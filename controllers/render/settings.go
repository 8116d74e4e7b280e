package render

import (
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	pacerv1 "github.com/pacer-dev/pacer/api/v1alpha1"
	"github.com/pacer-dev/pacer/service/config"
)

// SpecSettings are the tunable settings as the spec writes them. Fields the
// API server would have defaulted fall back to pacer-api's own defaults, so
// an object that skipped defaulting still renders the same config.
func SpecSettings(spec *pacerv1.TunedServiceSpec) pacerv1.Settings {
	def := config.Default()
	rps := ptr.Deref(spec.RateLimit.RequestsPerSecond, 0)
	return pacerv1.Settings{
		Replicas:        ptr.Deref(spec.Replicas, 1),
		MaxInFlight:     nonZero(spec.Workers.MaxInFlight, int32(def.Workers.MaxInFlight)),
		QueueDepth:      ptr.Deref(spec.Workers.QueueDepth, int32(def.Workers.QueueDepth)),
		PoolMinConns:    ptr.Deref(spec.Database.Pool.MinConns, def.Database.MinConns),
		PoolMaxConns:    nonZero(spec.Database.Pool.MaxConns, def.Database.MaxConns),
		CacheMaxEntries: ptr.Deref(spec.Cache.MaxEntries, int32(def.Cache.MaxEntries)),
		RateLimitRPS:    rps,
		// A burst of one second's worth of requests is the usual token-bucket default.
		RateLimitBurst: ptr.Deref(spec.RateLimit.Burst, rps),
	}
}

// ServiceConfig is the pacer-api config for ts running with settings s,
// at generation gen.
func ServiceConfig(ts *pacerv1.TunedService, s pacerv1.Settings, gen int64) config.Config {
	spec := &ts.Spec
	c := config.Default()
	c.Generation = gen
	c.Log.Format = "json"

	c.Server.Addr = portAddr(APIPort)
	c.Server.AdminAddr = portAddr(AdminPort)
	c.Server.RequestTimeout = dur(spec.RequestTimeout, c.Server.RequestTimeout)
	c.Server.ShutdownGracePeriod = dur(spec.ShutdownGracePeriod, c.Server.ShutdownGracePeriod)

	c.Workers.MaxInFlight = int(s.MaxInFlight)
	c.Workers.QueueDepth = int(s.QueueDepth)
	c.Workers.QueueTimeout = dur(spec.Workers.QueueTimeout, c.Workers.QueueTimeout)

	p := spec.Database.Pool
	c.Database.URLEnv = EnvDatabaseURL
	c.Database.MaxConns = s.PoolMaxConns
	// The tuner may shrink the pool below the spec's minimum; keep min <= max.
	c.Database.MinConns = min(s.PoolMinConns, s.PoolMaxConns)
	c.Database.MaxConnLifetime = dur(p.MaxConnLifetime, c.Database.MaxConnLifetime)
	c.Database.MaxConnIdleTime = dur(p.MaxConnIdleTime, c.Database.MaxConnIdleTime)
	c.Database.HealthCheckPeriod = dur(p.HealthCheckPeriod, c.Database.HealthCheckPeriod)
	c.Database.StatementTimeout = dur(spec.Database.StatementTimeout, c.Database.StatementTimeout)

	r := spec.RateLimit
	c.RateLimit.RequestsPerSecond = float64(s.RateLimitRPS)
	c.RateLimit.Burst = int(s.RateLimitBurst)
	if r.ClientKey != "" {
		c.RateLimit.ClientKey = config.ClientKey(r.ClientKey)
	}
	c.RateLimit.Header = r.Header
	c.RateLimit.TrustedProxies = r.TrustedProxies

	c.Cache.TTL = dur(spec.Cache.TTL, c.Cache.TTL)
	c.Cache.MaxEntries = int(s.CacheMaxEntries)
	if spec.Cache.Redis != nil {
		// TunedServices may share one Redis: each reads only its own keys.
		c.Cache.Redis = &config.Redis{URLEnv: EnvRedisURL, KeyPrefix: "pacer:" + ts.Namespace + "/" + ts.Name + ":user:"}
	}
	return c
}

func portAddr(port int) string { return ":" + strconv.Itoa(port) }

func dur(d *metav1.Duration, def config.Duration) config.Duration {
	if d == nil {
		return def
	}
	return config.D(d.Duration)
}

func nonZero(v, def int32) int32 {
	if v == 0 {
		return def
	}
	return v
}

// seconds rounds d up to whole seconds, as Kubernetes durations in pod specs are.
func seconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}
