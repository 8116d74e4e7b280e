package config

import (
	"strings"
	"testing"
	"time"
)

// The connection caps and the jobs retention (issue 20) have defaults a
// v0.1.0 file picks up, and refuse values that would turn them off.
func TestConnectionCapsAndRetention(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		field  string // "" when valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no total cap", func(c *Config) { c.Server.MaxConnections = 0 }, "server.maxConnections"},
		{"no per-client cap", func(c *Config) { c.Server.MaxConnectionsPerClient = 0 }, "server.maxConnectionsPerClient"},
		{"per-client above total", func(c *Config) { c.Server.MaxConnectionsPerClient = c.Server.MaxConnections + 1 }, "server.maxConnectionsPerClient"},
		{"per-client equal to total", func(c *Config) { c.Server.MaxConnectionsPerClient = c.Server.MaxConnections }, ""},
		{"no retention", func(c *Config) { c.Jobs.Retention = D(0) }, "jobs.retention"},
		{"retention under a minute", func(c *Config) { c.Jobs.Retention = D(time.Second) }, "jobs.retention"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			err := c.Validate()
			if (err == nil) != (tt.field == "") || (err != nil && !strings.Contains(err.Error(), tt.field)) {
				t.Fatalf("err = %v, want an error naming %q", err, tt.field)
			}
		})
	}
	c, err := Parse([]byte("generation: 1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.MaxConnections != 1024 || c.Server.MaxConnectionsPerClient != 256 || c.Jobs.Retention.Duration != 7*24*time.Hour {
		t.Fatalf("defaults: %d, %d, %s", c.Server.MaxConnections, c.Server.MaxConnectionsPerClient, c.Jobs.Retention)
	}
}

// A pod of the previous version (SchemaVersion 1) must not refuse a file
// with the new fields: the operator marks them with a newer version.
func TestNewFieldsComeWithANewerSchemaVersion(t *testing.T) {
	data, err := Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	if v := schemaVersionOf(data); v < 2 {
		t.Fatalf("a file with maxConnections and jobs.retention says schemaVersion %d; a version-1 pod would refuse it", v)
	}
}
