// Package e2e holds c2vm's end-to-end tests: real images made by real tools
// (testdata/mkfixtures.sh), Debian's cloud kernels, conversion through
// cli.Run in-process, and boots under QEMU (TCG) asserting on what the
// container printed and its exit status. They skip when a tool is missing,
// unless C2VM_E2E=1, when a missing tool is a failure.
package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/cli"
	"github.com/c2vm/c2vm/internal/cache"
	"github.com/c2vm/c2vm/internal/fixtures"
)

// c2vm runs the CLI in-process and returns its exit status and stderr.
func c2vm(t testing.TB, args ...string) (int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), args, &stdout, &stderr)
	return code, stderr.String()
}

// mustConvert converts and fails the test on error.
func mustConvert(t testing.TB, args ...string) {
	t.Helper()
	if code, stderr := c2vm(t, append([]string{"convert", "-q"}, args...)...); code != 0 {
		t.Fatalf("c2vm convert %q: exit %d: %s", args, code, stderr)
	}
}

// qemuPlain boots an output dir with the user's own plain QEMU command from
// issue 3 (no c2vm launcher), with extra kernel arguments, and returns the
// console output. The VM must power itself off.
func qemuPlain(t *testing.T, arch, dir, extraAppend string) string {
	t.Helper()
	return qemuConsole(t, arch, dir, extraAppend, true)
}

// qemuConsole is qemuPlain with the root disk optional.
func qemuConsole(t *testing.T, arch, dir, extraAppend string, disk bool) string {
	t.Helper()
	var args []string
	var bin string
	switch arch {
	case "amd64":
		bin = "qemu-system-x86_64"
		args = []string{"-M", "q35", "-append", strings.TrimSpace("console=ttyS0 " + extraAppend)}
	case "arm64":
		bin = "qemu-system-aarch64"
		args = []string{"-M", "virt", "-cpu", "max", "-append", strings.TrimSpace("console=ttyAMA0 " + extraAppend)}
	default:
		t.Fatalf("no plain QEMU command for %s", arch)
	}
	fixtures.NeedTools(t, bin)
	args = append(args, "-accel", "tcg", "-m", "512", "-nographic", "-no-reboot",
		"-kernel", filepath.Join(dir, "kernel"), "-initrd", filepath.Join(dir, "initramfs.img"))
	if disk {
		args = append(args, "-drive", "file="+filepath.Join(dir, "rootfs.img")+",if=virtio,format=raw,readonly=on")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = nil
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("%s boot of %s took %s", arch, filepath.Base(dir), time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("VM did not power off within 4m; console:\n%s", tail(string(out), 40))
	}
	if err != nil {
		t.Fatalf("%s: %v; console:\n%s", bin, err, tail(string(out), 40))
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

var statusRE = regexp.MustCompile(`(?m)^C2VM_EXIT_STATUS=(\d+)`)

// exitStatus finds the init's one machine-readable status line.
func exitStatus(t *testing.T, console string) int {
	t.Helper()
	m := statusRE.FindAllStringSubmatch(console, -1)
	if len(m) != 1 {
		t.Fatalf("want exactly one C2VM_EXIT_STATUS line, got %d; console:\n%s", len(m), tail(console, 40))
	}
	n, _ := strconv.Atoi(m[0][1])
	return n
}

// cmdArg is the kernel argument that replaces the container's command.
func cmdArg(args ...string) string {
	b, _ := json.Marshal(args)
	return "c2vm.cmd=" + base64.StdEncoding.EncodeToString(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func sameFile(t *testing.T, a, b string) bool {
	t.Helper()
	x, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

func cliMain(args []string, stdout, stderr io.Writer) int {
	return cli.Main(context.Background(), args, stdout, stderr)
}

// cacheDir is c2vm's cache directory (internal/cache), for what the
// tests build once.
func cacheDir(t *testing.T) string {
	t.Helper()
	d, err := cache.Dir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
