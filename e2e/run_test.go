package e2e

import (
	"context"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
)

// convertBusybox converts the busybox fixture for arch with Debian's kernel.
func convertBusybox(t testing.TB, arch string, extra ...string) string {
	t.Helper()
	return convertFor(t, arch, arch, extra...)
}

// convertFor converts the busybox image of imageArch for a VM of vmArch.
func convertFor(t testing.TB, imageArch, vmArch string, extra ...string) string {
	t.Helper()
	return convertRef(t, "oci:"+filepath.Join(fixtures.Dir(t), "busybox-"+imageArch), vmArch, extra...)
}

// convertRef converts the image ref names for a VM of vmArch, with the
// test kernel and init, into T/NAME.vm (oci:…/busybox-amd64 →
// busybox-amd64.vm).
func convertRef(t testing.TB, ref, vmArch string, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), strings.ReplaceAll(path.Base(ref), ":", "-")+".vm")
	mustConvert(t, append([]string{ref, "--kernel", testkernel.Deb(t, vmArch), "--init", initFor(t, vmArch), "-o", dir}, extra...)...)
	return dir
}

// runVM is `c2vm run` in-process: stdout and the exit status.
func runVM(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var stdout, stderr strings.Builder
	start := time.Now()
	code := cliMain(append([]string{"run", "--accel", "tcg"}, args...), &stdout, &stderr)
	t.Logf("c2vm run %q: %s", args, time.Since(start).Round(time.Millisecond))
	return stdout.String(), stderr.String(), code
}

// TestRun is issue 4's proof: `c2vm run` returns the container's output
// and exit status on both arches, honours `-- CMD` and times out.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64", "qemu-system-aarch64")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			dir := convertBusybox(t, arch, "--cmd", `["/bin/sh","-c","echo hello from c2vm; uname -m; exit 7"]`)
			stdout, stderr, code := runVM(t, dir)
			if code != 7 {
				t.Errorf("exit %d, want 7; stderr:\n%s", code, stderr)
			}
			want := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]
			if !strings.Contains(stdout, "hello from c2vm\n") || !strings.Contains(stdout, want+"\n") {
				t.Errorf("stdout %q lacks the greeting or %s", stdout, want)
			}
			if strings.Contains(stdout, "C2VM_EXIT_STATUS") || strings.Contains(stdout, "Linux version") {
				t.Errorf("stdout carries console noise: %q", stdout)
			}
			stdout, _, code = runVM(t, dir, "--", "/bin/sh", "-c", "echo overridden; exit 3")
			if code != 3 || !strings.Contains(stdout, "overridden") {
				t.Errorf("-- CMD: exit %d stdout %q, want 3 and 'overridden'", code, stdout)
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		dir := convertBusybox(t, "amd64", "--cmd", `["/bin/sleep","600"]`)
		start := time.Now()
		_, stderr, code := runVM(t, "--timeout", "20s", dir)
		if code != 124 || !strings.Contains(stderr, "timed out") {
			t.Errorf("exit %d stderr %q, want 124 and 'timed out'", code, stderr)
		}
		if d := time.Since(start); d > 60*time.Second {
			t.Errorf("timeout took %s", d)
		}
	})
}

// TestQemuScript boots the generated qemu.sh standalone from another cwd.
func TestQemuScript(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64")
	dir := convertBusybox(t, "amd64", "--cmd", `["/bin/sh","-c","echo via qemu.sh; exit 7"]`)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "qemu.sh"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(cmd.Environ(), "C2VM_ACCEL=tcg")
	out, _ := cmd.CombinedOutput()
	console := strings.ReplaceAll(string(out), "\r\n", "\n")
	if !strings.Contains(console, "via qemu.sh") {
		t.Errorf("qemu.sh console lacks the output:\n%s", tail(console, 30))
	}
	if got := exitStatus(t, console); got != 7 {
		t.Errorf("exit status %d, want 7", got)
	}
}

// TestForeignArch is issue 5's proof: the arm64 image runs in an amd64 VM
// through binfmt_misc and Debian's static qemu-aarch64.
func TestForeignArch(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64", "qemu-aarch64-static")
	interp, _ := exec.LookPath("qemu-aarch64-static")
	dir := convertFor(t, "arm64", "amd64", "--vm-arch", "amd64", "--binfmt-interpreter", interp,
		"--cmd", `["/bin/sh","-c","uname -m; id -un; exit 5"]`)
	stdout, stderr, code := runVM(t, dir)
	if code != 5 {
		t.Errorf("exit %d, want 5; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "aarch64\n") || !strings.Contains(stdout, "app\n") {
		t.Errorf("stdout %q: want aarch64 and app", stdout)
	}
}
