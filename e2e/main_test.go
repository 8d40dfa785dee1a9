package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

var (
	initDir  string
	initMu   sync.Mutex
	initBins = map[string]string{}
)

func TestMain(m *testing.M) {
	d, err := os.MkdirTemp("", "c2vm-e2e-init-")
	if err != nil {
		panic(err)
	}
	initDir = d
	code := m.Run()
	os.RemoveAll(d)
	os.Exit(code)
}

// initFor builds the guest init for arch from this tree, once, so the
// tests boot the code under test and never a stale embedded binary.
func initFor(t testing.TB, arch string) string {
	t.Helper()
	initMu.Lock()
	defer initMu.Unlock()
	if p, ok := initBins[arch]; ok {
		return p
	}
	fixtures.NeedTools(t, "go")
	p := filepath.Join(initDir, "c2vm-init-"+arch)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", p, "./cmd/c2vm-init")
	cmd.Dir = fixtures.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the init for %s: %v\n%s", arch, err, out)
	}
	initBins[arch] = p
	return p
}
