// Package config is the one definition of pacer-api's runtime configuration
// (DESIGN.md, Contract 1). The service parses it from its config file and the
// operator renders it into the ConfigMap with the same type, so the file
// format has a single source of truth.
//
// Secrets never appear here: the database and Redis URLs are read from
// environment variables whose names the file holds.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"sigs.k8s.io/yaml"
)

// Config is the whole runtime configuration of pacer-api.
type Config struct {
	// SchemaVersion is the file format's version (see SchemaVersion).
	SchemaVersion int `json:"schemaVersion,omitempty"`
	// Generation is bumped by the operator on every change it renders; the
	// service exports the generation it runs so the operator can tell when
	// every pod has picked a change up.
	Generation int64     `json:"generation"`
	Server     Server    `json:"server"`
	Workers    Workers   `json:"workers"`
	Database   Database  `json:"database"`
	RateLimit  RateLimit `json:"rateLimit"`
	Cache      Cache     `json:"cache"`
	Jobs       Jobs      `json:"jobs"`
	Log        Log       `json:"log"`
}

// Server holds the listeners and request-level limits.
type Server struct {
	// Addr is the API listen address.
	Addr string `json:"addr"`
	// AdminAddr serves /metrics, /healthz, /readyz and (if enabled) pprof,
	// never on the API port.
	AdminAddr string `json:"adminAddr"`
	// RequestTimeout bounds each request, database queries included.
	RequestTimeout Duration `json:"requestTimeout"`
	// ShutdownGracePeriod is how long in-flight work may take after SIGTERM.
	ShutdownGracePeriod Duration `json:"shutdownGracePeriod"`
	// DrainDelay is how long the API keeps accepting requests after /readyz
	// turns false on shutdown, so load balancers stop routing to the pod
	// before its listener closes. 0 closes the listener at once.
	DrainDelay Duration `json:"drainDelay"`
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64 `json:"maxBodyBytes"`
	// MaxConnections caps the open API connections; one more is closed as
	// soon as it is accepted. Each may hold an answer being written (at
	// most 2 MiB, 64 MiB for all of them together), a goroutine and its
	// buffers (about 20 KiB).
	MaxConnections int `json:"maxConnections"`
	// MaxConnectionsPerClient caps the open API connections of one client
	// (a remote IPv4 address or IPv6 /64), so that one client cannot take
	// every connection. Behind a proxy that does not keep the client's
	// address, the proxy is one client: raise the cap to its pool size.
	MaxConnectionsPerClient int `json:"maxConnectionsPerClient"`
	// EnablePprof mounts /debug/pprof on the admin port.
	EnablePprof bool `json:"enablePprof,omitempty"`
}

// Workers bounds the requests a pod works on at once.
type Workers struct {
	// MaxInFlight is the number of requests processed concurrently.
	MaxInFlight int `json:"maxInFlight"`
	// QueueDepth is how many more may wait for a slot; beyond it, 503.
	QueueDepth int `json:"queueDepth"`
	// QueueTimeout is the longest a request waits for a slot before 503.
	QueueTimeout Duration `json:"queueTimeout"`
}

// Database configures the PostgreSQL pool. The DSN itself comes from the
// environment variable named by URLEnv, fed from a Secret.
type Database struct {
	URLEnv            string   `json:"urlEnv"`
	MinConns          int32    `json:"minConns"`
	MaxConns          int32    `json:"maxConns"`
	MaxConnLifetime   Duration `json:"maxConnLifetime"`
	MaxConnIdleTime   Duration `json:"maxConnIdleTime"`
	HealthCheckPeriod Duration `json:"healthCheckPeriod"`
	// StatementTimeout is set as PostgreSQL's statement_timeout on every
	// connection; 0 leaves the server's default.
	StatementTimeout Duration `json:"statementTimeout"`
}

// ClientKey says what identifies a client for rate limiting.
type ClientKey string

const (
	ClientKeyIP     ClientKey = "IP"
	ClientKeyHeader ClientKey = "Header"
)

// RateLimit configures per-client token buckets.
type RateLimit struct {
	// RequestsPerSecond is each client's sustained rate; 0 turns limiting off.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// Burst is the bucket size.
	Burst int `json:"burst"`
	// ClientKey is IP (the remote address, or X-Forwarded-For from a trusted
	// proxy) or Header.
	ClientKey ClientKey `json:"clientKey"`
	// Header names the header that identifies a client when ClientKey is Header.
	Header string `json:"header,omitempty"`
	// TrustedProxies are CIDRs whose X-Forwarded-For is believed.
	TrustedProxies []string `json:"trustedProxies,omitempty"`
	// MaxClients bounds the bucket table; the least recently seen client is
	// evicted first, so a flood of distinct clients cannot grow memory.
	MaxClients int `json:"maxClients"`
}

// Enabled reports whether rate limiting is on.
func (r RateLimit) Enabled() bool { return r.RequestsPerSecond > 0 }

// Cache configures the read-through user cache.
type Cache struct {
	// TTL is how long an entry is served; 0 turns the cache off.
	TTL Duration `json:"ttl"`
	// MaxEntries bounds the in-process layer; 0 turns the cache off.
	MaxEntries int `json:"maxEntries"`
	// Redis, when set, adds a shared layer behind the in-process one.
	Redis *Redis `json:"redis,omitempty"`
}

// Enabled reports whether the cache is on.
func (c Cache) Enabled() bool { return c.TTL.Duration > 0 && c.MaxEntries > 0 }

// Redis configures the optional shared cache layer. The URL comes from the
// environment variable named by URLEnv, fed from a Secret.
type Redis struct {
	URLEnv string `json:"urlEnv"`
	// KeyPrefix namespaces the keys, so that deployments sharing one Redis
	// never read each other's users. Empty means "pacer:user:".
	KeyPrefix string `json:"keyPrefix,omitempty"`
}

// DefaultRedisKeyPrefix is used when Redis.KeyPrefix is empty.
const DefaultRedisKeyPrefix = "pacer:user:"

// Prefix returns the key prefix in effect.
func (r Redis) Prefix() string {
	if r.KeyPrefix == "" {
		return DefaultRedisKeyPrefix
	}
	return r.KeyPrefix
}

// Jobs configures the background jobs (the outbox).
type Jobs struct {
	// Retention is how long a job that failed its last attempt is kept for
	// inspection before it is purged. Done jobs are deleted when applied.
	Retention Duration `json:"retention"`
}

// Log configures structured logging.
type Log struct {
	// Format is json, text, or auto (text on a terminal, json otherwise).
	Format string `json:"format"`
	// Level is debug, info, warn or error.
	Level string `json:"level"`
}

// Parse reads a YAML or JSON document over the defaults and validates it.
// Unknown fields are errors, so a typo never silently falls back to a
// default, unless the file is of a newer SchemaVersion than this pacer-api's.
func Parse(data []byte) (Config, error) {
	c := Default()
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		v := schemaVersionOf(data)
		if v <= SchemaVersion {
			return Config{}, fmt.Errorf("parse config: %w", err)
		}
		slog.Warn("config file from a newer operator: ignoring what this pacer-api does not know",
			"schemaVersion", v, "supported", SchemaVersion, "error", err.Error())
		c = Default()
		if err := yaml.Unmarshal(data, &c); err != nil {
			return Config{}, fmt.Errorf("parse config: %w", err)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Load parses the file at path.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if empty(data) {
		// A file truncated by a non-atomic write reads as empty; taking it
		// for "all defaults" would silently turn every limit off.
		return Config{}, fmt.Errorf("%s: %w", path, ErrEmpty)
	}
	c, err := Parse(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ErrEmpty is returned for a config file with no settings at all (empty,
// blank, or only comments).
var ErrEmpty = errors.New("config file holds no settings (empty or truncated); write at least the generation")

// empty reports whether data is a YAML document with nothing in it.
func empty(data []byte) bool {
	j, err := yaml.YAMLToJSON(data)
	return err == nil && string(bytes.TrimSpace(j)) == "null"
}

// Marshal renders c as YAML, the form the operator writes into ConfigMaps.
func Marshal(c Config) ([]byte, error) {
	return yaml.Marshal(c)
}
