package vmimage

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/c2vm/c2vm/vmdir"
)

// readVM is this package's one reader of a VM directory: manifest.json,
// and every artifact it lists checked against its sha256 and size.
func readVM(dir string) (*vmdir.Manifest, error) {
	m, err := vmdir.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if m.Artifacts == nil {
		return nil, fmt.Errorf("%s/manifest.json lists no artifacts", dir)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Artifacts)) {
		if !plainName(name) {
			return nil, fmt.Errorf("%s/manifest.json: artifact %q is not a file name", dir, name)
		}
		want := m.Artifacts[name]
		got, err := vmdir.DigestFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if got != want {
			return nil, fmt.Errorf("%s: sha256 or size mismatch (manifest.json says %s, %d bytes; the file has %s, %d bytes)",
				name, want.SHA256, want.Size, got.SHA256, got.Size)
		}
	}
	return m, nil
}

// plainName reports whether s names a file in a directory itself: no
// separator, not "." or "..".
func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}

// fileMode is an artifact's mode in a layer and after a restore: 0755
// for what its owner may run (qemu.sh), else 0644, whatever the umask.
func fileMode(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	if fi.Mode()&0o100 != 0 {
		return 0o755, nil
	}
	return 0o644, nil
}
