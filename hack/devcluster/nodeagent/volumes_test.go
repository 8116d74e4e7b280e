package nodeagent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteAtomicLayout checks the kubelet's layout: a timestamped folder,
// ..data pointing at it, per-key links through ..data, the old folder
// removed on update, and links of removed keys gone.
func TestWriteAtomicLayout(t *testing.T) {
	dir := t.TempDir()
	changed, err := writeAtomic(dir, map[string][]byte{"config.yaml": []byte("generation: 1\n"), "extra": []byte("x")}, 0o444)
	if err != nil || !changed {
		t.Fatalf("first write: changed=%t err=%v", changed, err)
	}
	first, err := os.Readlink(filepath.Join(dir, "..data"))
	if err != nil || !strings.HasPrefix(first, "..20") {
		t.Fatalf("..data -> %q, %v", first, err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "config.yaml")); l != "..data/config.yaml" {
		t.Fatalf("config.yaml -> %q", l)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.yaml")); string(b) != "generation: 1\n" {
		t.Fatalf("content %q", b)
	}
	st, _ := os.Stat(filepath.Join(dir, first, "config.yaml"))
	if st.Mode().Perm() != 0o444 {
		t.Fatalf("mode %v", st.Mode())
	}

	if changed, err := writeAtomic(dir, map[string][]byte{"config.yaml": []byte("generation: 1\n"), "extra": []byte("x")}, 0o444); err != nil || changed {
		t.Fatalf("same content: changed=%t err=%v", changed, err)
	}

	if _, err := writeAtomic(dir, map[string][]byte{"config.yaml": []byte("generation: 2\n")}, 0o444); err != nil {
		t.Fatal(err)
	}
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	if second == first {
		t.Fatal("..data was not swapped")
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Fatalf("old folder %s still there (%v)", first, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "extra")); !os.IsNotExist(err) {
		t.Fatalf("link of a removed key still there (%v)", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "config.yaml")); string(b) != "generation: 2\n" {
		t.Fatalf("content after update %q", b)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 3 { // ..<ts>, ..data, config.yaml
		t.Fatalf("entries %v", names)
	}
}
