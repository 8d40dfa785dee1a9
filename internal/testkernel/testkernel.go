// Package testkernel gives tests Debian's cloud kernel packages, fetched
// once with `apt-get download` by scripts/fetch-kernel.sh into
// $C2VM_CACHE/kernels.
package testkernel

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

var (
	mu    sync.Mutex
	debs  = map[string]string{}
	fails = map[string]string{}
)

// Deb returns the path of linux-image-…-cloud-ARCH's .deb.
func Deb(t testing.TB, arch string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if _, ok := debs[arch]; !ok && fails[arch] == "" {
		debs[arch], fails[arch] = fetch(arch)
	}
	if fails[arch] != "" {
		fixtures.Skip(t, "kernel %s: %s", arch, fails[arch])
	}
	return debs[arch]
}

func fetch(arch string) (string, string) {
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", "apt-get is not available"
	}
	cmd := exec.Command("sh", filepath.Join(fixtures.RepoRoot(), "scripts", "fetch-kernel.sh"), arch)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", "fetch-kernel.sh: " + err.Error() + ": " + stderr.String()
	}
	return strings.TrimSpace(string(out)), ""
}
