package e2e

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
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
