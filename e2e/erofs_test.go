package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
)

// TestBootErofs is issue 13's erofs proof: the busybox fixture converted
// with --rootfs erofs passes fsck.erofs (every file decompressed), boots
// on both arches with Debian's 6.1 kernel (erofs as a module), runs as the
// image's USER, and the kernel sees the metadata the layers carried.
func TestBootErofs(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "fsck.erofs")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			dir := convertBusybox(t, arch, "--rootfs", "erofs")
			img := filepath.Join(dir, "rootfs.img")
			if out, err := exec.Command("fsck.erofs", "--extract", img).CombinedOutput(); err != nil {
				t.Fatalf("fsck.erofs --extract %s: %v\n%s", img, err, out)
			}
			script := `id; cat /home/app/secret.txt /etc/motd; ls -ln /usr/bin/suid-file /devnode/null; ` +
				`stat -c 'hardlink %i %h' /etc/hard-a /etc/hard-b; grep ' / ' /proc/mounts; exit 7`
			out := qemuPlain(t, arch, dir, cmdArg("/bin/sh", "-c", script))
			for _, want := range []string{
				"uid=1000(app) gid=1000(app)",
				"only-app-reads-this",
				"hello from c2vm",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("console lacks %q:\n%s", want, tail(out, 40))
				}
			}
			for _, re := range []string{
				`-rwsr-xr-x\s+1\s+0\s+0\s+7 .*/usr/bin/suid-file`,
				`crw-r--r--\s+1\s+0\s+0\s+1,\s+3 .*/devnode/null`,
				`hardlink (\d+) 2\s+hardlink (\d+) 2`,
			} {
				m := regexp.MustCompile(re).FindStringSubmatch(out)
				if m == nil || len(m) == 3 && m[1] != m[2] {
					t.Errorf("console lacks %s (or the hardlinks differ):\n%s", re, tail(out, 40))
				}
			}
			if got := exitStatus(t, out); got != 7 {
				t.Errorf("exit status %d, want 7", got)
			}
		})
	}
}

// TestBootErofsDebian boots a real distribution from an erofs root: a
// debootstrap minbase of Debian bookworm (the Dockerfile test's base, one
// layer as debootstrap made it, ~5000 files) converted with --rootfs
// erofs passes fsck.erofs, and in the VM su and passwd keep their setuid
// bit and perl's two hardlinked names one inode.
func TestBootErofsDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Debian tree and boots a VM")
	}
	fixtures.NeedTools(t, "fsck.erofs", "umoci", "debootstrap", "qemu-system-x86_64")
	ref := treeImage(t, debianTree(t))
	dir := filepath.Join(t.TempDir(), "vm")
	mustConvert(t, ref, "--cmd", "/bin/sh", "--rootfs", "erofs", "--kernel", testkernel.Deb(t, "amd64"),
		"--init", initFor(t, "amd64"), "-o", dir)
	img := filepath.Join(dir, "rootfs.img")
	if out, err := exec.Command("fsck.erofs", img).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs %s: %v\n%s", img, err, out)
	}
	script := `ls -ln /bin/su /usr/bin/passwd; stat -c 'perl %i %h' /usr/bin/perl /usr/bin/perl5.*; ` +
		`grep PRETTY_NAME /etc/os-release; exit 3`
	out := qemuPlain(t, "amd64", dir, cmdArg("/bin/sh", "-c", script))
	for _, re := range []string{
		`-rwsr-xr-x\s+1\s+0\s+0\s+\d+ .*/bin/su`,
		`-rwsr-xr-x\s+1\s+0\s+0\s+\d+ .*/usr/bin/passwd`,
		`perl (\d+) 2\s+perl (\d+) 2`,
		`PRETTY_NAME="Debian GNU/Linux 12 \(bookworm\)"`,
	} {
		m := regexp.MustCompile(re).FindStringSubmatch(out)
		if m == nil || len(m) == 3 && m[1] != m[2] {
			t.Errorf("console lacks %s (or the hardlinks differ):\n%s", re, tail(out, 40))
		}
	}
	if got := exitStatus(t, out); got != 3 {
		t.Errorf("exit status %d, want 3", got)
	}
}

// treeImage makes a one-layer OCI image of a root tarball with umoci and
// returns its reference.
func treeImage(t *testing.T, tarball string) string {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "oci")
	runTool(t, "", "umoci", "init", "--layout", layout)
	runTool(t, "", "umoci", "new", "--image", layout+":debian")
	runTool(t, "", "umoci", "raw", "add-layer", "--image", layout+":debian", tarball)
	return "oci:" + layout + ":debian"
}
