package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
)

// TestRootlessSameBytes converts as nobody (65534, no groups) and as the
// current user, and wants the same artifacts: nothing in the conversion
// depends on privileges.
func TestRootlessSameBytes(t *testing.T) {
	if os.Geteuid() != 0 {
		fixtures.Skip(t, "needs root to switch to an unprivileged user")
	}
	fixtures.NeedTools(t, "setpriv", "go")
	fix := fixtures.Dir(t)
	work, err := os.MkdirTemp("", "c2vm-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	os.Chmod(work, 0o777)
	bin := filepath.Join(work, "c2vm")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/c2vm").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src := filepath.Join(work, "image")
	if out, err := exec.Command("cp", "-r", filepath.Join(fix, "busybox-amd64"), src).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	exec.Command("chmod", "-R", "a+rX", work).Run()
	for _, format := range convert.Formats() {
		t.Run(format, func(t *testing.T) {
			asRoot := filepath.Join(work, format+"-root")
			asNobody := filepath.Join(work, format+"-nobody")
			args := []string{"convert", "-q", "--no-kernel", "--rootfs", format, "oci:" + src, "-o"}
			asUsers(t, bin, work, args, asRoot, asNobody)
			compareDirs(t, asRoot, asNobody)
		})
	}
	// With a kernel package and the init: everything but the files that
	// name their own directory (configs, manifest) is the same.
	t.Run("with kernel", func(t *testing.T) {
		deb := filepath.Join(work, "kernel.deb")
		initBin := filepath.Join(work, "init")
		for src, dst := range map[string]string{testkernel.Deb(t, "amd64"): deb, initFor(t, "amd64"): initBin} {
			if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v %s", err, out)
			}
		}
		exec.Command("chmod", "-R", "a+rX", work).Run()
		asRoot := filepath.Join(work, "k-root")
		asNobody := filepath.Join(work, "k-nobody")
		args := []string{"convert", "-q", "--kernel", deb, "--init", initBin, "oci:" + src, "-o"}
		asUsers(t, bin, work, args, asRoot, asNobody)
		for _, f := range []string{"kernel", "vmlinux", "initramfs.img", "rootfs.img", "boot.json", "config.json"} {
			if !sameFile(t, filepath.Join(asRoot, f), filepath.Join(asNobody, f)) {
				t.Errorf("%s differs between root and nobody", f)
			}
		}
	})
}

// asUsers runs `c2vm args... OUT` as the current user (root) into asRoot
// and as nobody (65534, no groups, a bare environment) into asNobody.
func asUsers(t *testing.T, bin, work string, args []string, asRoot, asNobody string) {
	t.Helper()
	if out, err := exec.Command(bin, append(args, asRoot)...).CombinedOutput(); err != nil {
		t.Fatalf("as root: %v\n%s", err, out)
	}
	cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, append(args, asNobody)...)...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + work, "TMPDIR=" + work}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}
