package e2e

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2vm/c2vm/cli"
	"github.com/c2vm/c2vm/internal/fixtures"
)

// trapTERM is a container that reports TERM and exits 0 on it, as a
// service with a clean shutdown does.
const trapTERM = `trap 'echo "got TERM as $(id -u)"; exit 0' TERM; echo ready; while :; do sleep 1; done`

// TestGracefulStop: cancelling `c2vm run` (what its SIGTERM and SIGINT do)
// presses the VM's power button through QMP (ACPI on amd64, the GPIO key
// on arm64 virt); the init sends the container its STOPSIGNAL, the
// container's handler runs, and run exits with the container's status.
func TestGracefulStop(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			fixtures.NeedTools(t, map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}[arch])
			dir := convertBusybox(t, arch, "--cmd", shellCmd(trapTERM))
			out, stderr, code := runUntil(t, "ready\n", "run", "--accel", "tcg", "--timeout", "10m", dir)
			if code != 0 || !strings.Contains(out, "got TERM as 1000\n") {
				t.Errorf("exit %d, output %q; want 0 and the TERM handler's line\nstderr: %s", code, out, stderr)
			}
			if !strings.Contains(stderr, "stopping the VM") {
				t.Errorf("stderr does not say the VM is being stopped: %s", stderr)
			}
		})
	}
}

// TestStopTimeoutKills: a container that ignores TERM is killed after the
// stop timeout: 128+SIGKILL.
func TestStopTimeoutKills(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64")
	dir := convertBusybox(t, "amd64", "--cmd", shellCmd(`trap '' TERM; echo ready; while :; do sleep 1; done`))
	_, stderr, code := runUntil(t, "ready\n", "run", "--accel", "tcg", "--timeout", "10m", dir)
	if code != 137 {
		t.Errorf("exit %d, want 137 (SIGKILL after the stop timeout); stderr: %s", code, stderr)
	}
}

// runUntil runs the CLI in-process and cancels it, as SIGTERM does, once
// stdout holds marker.
func runUntil(t *testing.T, marker string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &watchWriter{marker: marker, seen: cancel}
	var stderr strings.Builder
	start := time.Now()
	code := cli.Main(ctx, args, out, &stderr)
	t.Logf("c2vm %q: %s", args, time.Since(start).Round(time.Millisecond))
	return out.String(), stderr.String(), code
}

// watchWriter collects output and calls seen once marker appears.
type watchWriter struct {
	mu     sync.Mutex
	b      strings.Builder
	marker string
	seen   func()
	once   sync.Once
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if strings.Contains(w.b.String(), w.marker) {
		w.once.Do(w.seen)
	}
	return len(p), nil
}

func (w *watchWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
