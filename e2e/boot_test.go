package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
)

// TestBootPlainQEMU is issue 3's proof: the busybox fixture, converted with
// Debian's cloud kernel, boots under the user's own plain QEMU command and
// runs as the image's USER with its env and cwd; exit statuses come back.
func TestBootPlainQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			fix := fixtures.Dir(t)
			deb := testkernel.Deb(t, arch)
			dir := filepath.Join(t.TempDir(), "vm")
			mustConvert(t, "oci:"+filepath.Join(fix, "busybox-"+arch), "--kernel", deb, "--init", initFor(t, arch), "-o", dir)

			script := `id; echo "FOO=$FOO"; echo "EXTRA=$EXTRA"; echo "PATH=$PATH"; echo "PWD=$(pwd)"; cat /home/app/secret.txt; ` +
				`test -e /gone.txt && echo gone-present || echo gone-absent; cat /etc/motd; grep CapBnd /proc/self/status; exit 7`
			out := qemuPlain(t, arch, dir, cmdArg("/bin/sh", "-c", script)+" c2vm.env=EXTRA=from-cmdline")
			for _, want := range []string{
				"uid=1000(app) gid=1000(app)",
				"FOO=bar",
				"EXTRA=from-cmdline",
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"PWD=/home/app",
				"only-app-reads-this",
				"gone-absent",
				"hello from c2vm",
				// containerd's (and Docker's) default bounding set.
				"CapBnd:\t00000000a80425fb",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("console lacks %q:\n%s", want, tail(out, 40))
				}
			}
			if !strings.Contains(out, "audio") || !strings.Contains(out, "wheel") {
				t.Errorf("id shows no supplementary groups audio, wheel:\n%s", tail(out, 40))
			}
			if got := exitStatus(t, out); got != 7 {
				t.Errorf("exit status %d, want 7", got)
			}
		})
	}
}

// TestExitStatuses checks Docker's exit-code conventions through the init,
// using the kernel command line override (no reconversion needed).
func TestExitStatuses(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fix := fixtures.Dir(t)
	deb := testkernel.Deb(t, "amd64")
	dir := filepath.Join(t.TempDir(), "vm")
	// The default rootfs (squashfs) boots in TestBootPlainQEMU; ext4 here.
	mustConvert(t, "oci:"+filepath.Join(fix, "busybox-amd64"), "--rootfs", "ext4", "--kernel", deb, "--init", initFor(t, "amd64"), "-o", dir)
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"success", []string{"/bin/true"}, 0},
		{"not executable", []string{"/etc/motd"}, 126},
		{"not found", []string{"/no/such/program"}, 127},
		{"killed", []string{"/bin/sh", "-c", "kill -9 $$"}, 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := qemuPlain(t, "amd64", dir, cmdArg(tc.args...))
			if got := exitStatus(t, out); got != tc.want {
				t.Errorf("%q: exit status %d, want %d", tc.args, got, tc.want)
			}
		})
	}
}

// TestOverrides: --user, --workdir, --env and --hostname change what the
// container runs as, where, and with what.
func TestOverrides(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	dir := convertBusybox(t, "amd64", "--user", "nobody:app", "--workdir", "/tmp", "--env", "FOO=overridden",
		"--hostname", "box", "--cmd", `["/bin/sh","-c","id; pwd; echo FOO=$FOO; cat /etc/hostname"]`)
	out := qemuPlain(t, "amd64", dir, "")
	for _, want := range []string{"uid=65534(nobody) gid=1000(app)", "\n/tmp\n", "FOO=overridden", "\nbox\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("console lacks %q:\n%s", want, tail(out, 20))
		}
	}
	if strings.Contains(out, "groups=") && strings.Contains(out, "wheel") {
		t.Errorf("an explicit group must not add supplementary groups:\n%s", tail(out, 20))
	}
}

// TestInitFailureReported: a VM started without its root disk says what it
// waited for, reports an init error with status 125 and powers off.
func TestInitFailureReported(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	dir := convertBusybox(t, "amd64")
	console := qemuConsole(t, "amd64", dir, "quiet", false)
	for _, want := range []string{"waiting up to 10s for the root disk",
		"C2VM_INIT_ERROR=step ", "mount the squashfs root disk (found by content, waiting up to 10s) read-only on /run/c2vm/lower: no disk holds the squashfs root filesystem"} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, tail(console, 20))
		}
	}
	if got := exitStatus(t, console); got != 125 {
		t.Errorf("exit status %d, want 125", got)
	}
}
