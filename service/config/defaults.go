package config

import "time"

// Default is the configuration of a standalone run: every field has a value
// that works on a laptop with only DATABASE_URL set. Rate limiting is off.
func Default() Config {
	return Config{
		SchemaVersion: SchemaVersion,
		Server: Server{
			Addr:                ":8080",
			AdminAddr:           ":9090",
			RequestTimeout:      D(5 * time.Second),
			ShutdownGracePeriod: D(20 * time.Second),
			MaxBodyBytes:        1 << 20,
			// Per client, four times loadgen's 64 keep-alive connections.
			MaxConnections:          1024,
			MaxConnectionsPerClient: 256,
		},
		Workers: Workers{
			MaxInFlight:  64,
			QueueDepth:   256,
			QueueTimeout: D(250 * time.Millisecond),
		},
		Database: Database{
			URLEnv:            "DATABASE_URL",
			MinConns:          2,
			MaxConns:          16,
			MaxConnLifetime:   D(30 * time.Minute),
			MaxConnIdleTime:   D(5 * time.Minute),
			HealthCheckPeriod: D(30 * time.Second),
			StatementTimeout:  D(2 * time.Second),
		},
		RateLimit: RateLimit{
			ClientKey:  ClientKeyIP,
			MaxClients: 10000,
		},
		Cache: Cache{
			TTL:        D(30 * time.Second),
			MaxEntries: 10000,
		},
		Jobs: Jobs{Retention: D(7 * 24 * time.Hour)},
		Log:  Log{Format: "auto", Level: "info"},
	}
}
