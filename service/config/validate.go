package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"time"
)

// envName is a POSIX environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// MinRequestsPerSecond is the smallest rate limit: one request per 100 s.
// Below it a client could wait longer than any Retry-After is worth.
const MinRequestsPerSecond = 0.01

// Validate returns every problem in c, each naming its field by its path in
// the file (for example "workers.maxInFlight").
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}

	if c.Generation < 0 {
		bad("generation", "must be >= 0, got %d", c.Generation)
	}

	s := c.Server
	for field, addr := range map[string]string{"server.addr": s.Addr, "server.adminAddr": s.AdminAddr} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(field, "must be host:port, got %q", addr)
		}
	}
	// Port 0 picks a free port, so two ":0" listeners never collide (tests).
	if _, port, _ := net.SplitHostPort(s.Addr); s.Addr == s.AdminAddr && port != "0" {
		bad("server.adminAddr", "must differ from server.addr (%q)", s.Addr)
	}
	if s.RequestTimeout.Duration <= 0 {
		bad("server.requestTimeout", "must be > 0, got %s", s.RequestTimeout)
	}
	if s.ShutdownGracePeriod.Duration < 0 {
		bad("server.shutdownGracePeriod", "must be >= 0, got %s", s.ShutdownGracePeriod)
	}
	if s.DrainDelay.Duration < 0 {
		bad("server.drainDelay", "must be >= 0, got %s", s.DrainDelay)
	}
	if s.MaxBodyBytes <= 0 {
		bad("server.maxBodyBytes", "must be > 0, got %d", s.MaxBodyBytes)
	}

	if s.MaxConnections < 1 {
		bad("server.maxConnections", "must be >= 1, got %d", s.MaxConnections)
	}
	if s.MaxConnectionsPerClient < 1 || s.MaxConnectionsPerClient > s.MaxConnections {
		bad("server.maxConnectionsPerClient", "must be between 1 and server.maxConnections (%d), got %d",
			s.MaxConnections, s.MaxConnectionsPerClient)
	}

	w := c.Workers
	if w.MaxInFlight < 1 {
		bad("workers.maxInFlight", "must be >= 1, got %d", w.MaxInFlight)
	}
	if w.QueueDepth < 0 {
		bad("workers.queueDepth", "must be >= 0, got %d", w.QueueDepth)
	}
	if w.QueueTimeout.Duration < 0 {
		bad("workers.queueTimeout", "must be >= 0, got %s", w.QueueTimeout)
	}

	d := c.Database
	if !envName.MatchString(d.URLEnv) {
		bad("database.urlEnv", "must be an environment variable name, got %q", d.URLEnv)
	}
	if d.MaxConns < 1 {
		bad("database.maxConns", "must be >= 1, got %d", d.MaxConns)
	}
	if d.MinConns < 0 || d.MinConns > d.MaxConns {
		bad("database.minConns", "must be between 0 and database.maxConns (%d), got %d", d.MaxConns, d.MinConns)
	}
	for field, v := range map[string]Duration{
		"database.maxConnLifetime":   d.MaxConnLifetime,
		"database.maxConnIdleTime":   d.MaxConnIdleTime,
		"database.healthCheckPeriod": d.HealthCheckPeriod,
	} {
		if v.Duration <= 0 {
			bad(field, "must be > 0, got %s", v)
		}
	}
	if d.StatementTimeout.Duration < 0 {
		bad("database.statementTimeout", "must be >= 0, got %s", d.StatementTimeout)
	}

	r := c.RateLimit
	if r.RequestsPerSecond < 0 || (r.RequestsPerSecond > 0 && r.RequestsPerSecond < MinRequestsPerSecond) {
		bad("rateLimit.requestsPerSecond", "must be 0 (off) or >= %g, got %g", MinRequestsPerSecond, r.RequestsPerSecond)
	}
	if r.Burst < 0 {
		bad("rateLimit.burst", "must be >= 0, got %d", r.Burst)
	}
	if r.Enabled() && r.Burst < 1 {
		bad("rateLimit.burst", "must be >= 1 when rateLimit.requestsPerSecond is set")
	}
	switch r.ClientKey {
	case ClientKeyIP:
	case ClientKeyHeader:
		if r.Header == "" {
			bad("rateLimit.header", "is required when rateLimit.clientKey is Header")
		}
	default:
		bad("rateLimit.clientKey", "must be IP or Header, got %q", r.ClientKey)
	}
	for i, cidr := range r.TrustedProxies {
		if _, err := netip.ParsePrefix(cidr); err != nil {
			bad(fmt.Sprintf("rateLimit.trustedProxies[%d]", i), "must be a CIDR such as 10.0.0.0/8, got %q", cidr)
		}
	}
	if r.MaxClients < 1 {
		bad("rateLimit.maxClients", "must be >= 1, got %d", r.MaxClients)
	}

	k := c.Cache
	if k.TTL.Duration < 0 {
		bad("cache.ttl", "must be >= 0, got %s", k.TTL)
	}
	if k.MaxEntries < 0 {
		bad("cache.maxEntries", "must be >= 0, got %d", k.MaxEntries)
	}
	if k.Redis != nil && !envName.MatchString(k.Redis.URLEnv) {
		bad("cache.redis.urlEnv", "must be an environment variable name, got %q", k.Redis.URLEnv)
	}

	if c.Jobs.Retention.Duration < time.Minute {
		bad("jobs.retention", "must be >= 1m, got %s", c.Jobs.Retention)
	}

	switch c.Log.Format {
	case "auto", "json", "text":
	default:
		bad("log.format", "must be auto, json or text, got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	return errors.Join(errs...)
}
