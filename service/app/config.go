package app

import (
	"fmt"
	"net"

	"github.com/pacer-dev/pacer/service/config"
)

// ListenHostEnv, when set, replaces the host part of server.addr and
// server.adminAddr. The dev cluster runs each pod as a local process on its
// own loopback address (127.0.x.y) and sets it so pods do not collide.
const ListenHostEnv = "PACER_LISTEN_HOST"

// loadConfig reads path (defaults when empty) and applies the environment
// overrides.
func loadConfig(path string, getenv func(string) string) (config.Config, error) {
	cfg := config.Default()
	if path != "" {
		var err error
		if cfg, err = config.Load(path); err != nil {
			return config.Config{}, err
		}
	}
	return withListenHost(cfg, getenv(ListenHostEnv))
}

func withListenHost(cfg config.Config, host string) (config.Config, error) {
	if host == "" {
		return cfg, nil
	}
	for _, addr := range []*string{&cfg.Server.Addr, &cfg.Server.AdminAddr} {
		_, port, err := net.SplitHostPort(*addr)
		if err != nil {
			return config.Config{}, fmt.Errorf("%s: %w", ListenHostEnv, err)
		}
		*addr = net.JoinHostPort(host, port)
	}
	return cfg, nil
}
