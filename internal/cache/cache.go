// Package cache names c2vm's cache directory: $C2VM_CACHE, else
// ~/.cache/c2vm. The launcher keeps its KVM probe there and the tests their
// fixtures, kernels and benchmark inputs. The shell side (Makefile,
// testdata/mkfixtures.sh, scripts/fetch-kernel.sh, qemu.sh) spells the same
// rule as ${C2VM_CACHE:-$HOME/.cache/c2vm}; keep them in step.
package cache

import (
	"fmt"
	"os"
	"path/filepath"
)

// Dir returns the cache directory; it does not create it. It fails only
// when C2VM_CACHE is unset and the user has no home directory.
func Dir() (string, error) {
	if d := os.Getenv("C2VM_CACHE"); d != "" {
		return d, nil
	}
	// $HOME, not os.UserCacheDir's $XDG_CACHE_HOME: the shell scripts that
	// fill the same cache know only $HOME.
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w", err)
	}
	return filepath.Join(home, ".cache", "c2vm"), nil
}
