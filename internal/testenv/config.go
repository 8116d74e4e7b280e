package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pacer-dev/pacer/service/config"
)

// WriteConfig writes cfg to path as pacer-api reads it. It writes a temp
// file and renames it, as editors and the kubelet do, so a watcher never
// reads a half-written file.
func WriteConfig(t testing.TB, path string, cfg config.Config) {
	t.Helper()
	out, err := config.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
