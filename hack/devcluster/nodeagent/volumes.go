package nodeagent

import (
	"bytes"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Names the kubelet's atomic writer uses inside a ConfigMap or Secret volume.
const (
	dataDirName    = "..data"
	newDataDirName = "..data_tmp"
)

// writeAtomic publishes files (key → content) into dir the way the
// kubelet's AtomicWriter does, so readers never see a half-written set:
//
//	dir/..2026_11_26_07_00_00.123456789/<key>   the new content, in a fresh timestamped folder
//	dir/..data -> ..2026_11_26_07_00_00.123456789   swapped with one rename(2)
//	dir/<key> -> ..data/<key>                       per-key links, created once
//
// The previous timestamped folder is removed after the swap, and keys that
// disappeared lose their links. It reports whether anything changed.
func writeAtomic(dir string, files map[string][]byte, mode os.FileMode) (bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	oldTS, _ := os.Readlink(filepath.Join(dir, dataDirName))
	if oldTS != "" && sameContent(filepath.Join(dir, oldTS), files) {
		return false, nil
	}

	ts := "..%s" // kubelet's format: ..2006_01_02_15_04_05.<nanos>
	tsDir, err := os.MkdirTemp(dir, fmt.Sprintf(ts, time.Now().UTC().Format("2006_01_02_15_04_05.")))
	if err != nil {
		return false, err
	}
	if err := os.Chmod(tsDir, 0o755); err != nil {
		return false, err
	}
	for _, key := range slices.Sorted(maps.Keys(files)) {
		p := filepath.Join(tsDir, key)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return false, err
		}
		if err := os.WriteFile(p, files[key], mode); err != nil {
			return false, err
		}
		if err := os.Chmod(p, mode); err != nil {
			return false, err
		}
	}

	tmpLink := filepath.Join(dir, newDataDirName)
	_ = os.Remove(tmpLink)
	if err := os.Symlink(filepath.Base(tsDir), tmpLink); err != nil {
		return false, err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, dataDirName)); err != nil {
		return false, err
	}

	// Per-key links point through ..data, so they never need to change.
	for key := range files {
		top := strings.SplitN(key, "/", 2)[0]
		link := filepath.Join(dir, top)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join(dataDirName, top), link); err != nil {
			return false, err
		}
	}
	// Links of keys that are gone.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "..") {
			continue
		}
		if !hasTopKey(files, name) {
			_ = os.Remove(filepath.Join(dir, name))
		}
	}
	if oldTS != "" {
		_ = os.RemoveAll(filepath.Join(dir, oldTS))
	}
	return true, nil
}

func hasTopKey(files map[string][]byte, top string) bool {
	for key := range files {
		if strings.SplitN(key, "/", 2)[0] == top {
			return true
		}
	}
	return false
}

func sameContent(dir string, files map[string][]byte) bool {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		rel, _ := filepath.Rel(dir, p)
		want, ok := files[rel]
		got, rerr := os.ReadFile(p)
		if !ok || rerr != nil || !bytes.Equal(got, want) {
			return errDiffers
		}
		return nil
	})
	return err == nil && n == len(files)
}

var errDiffers = fmt.Errorf("differs")
