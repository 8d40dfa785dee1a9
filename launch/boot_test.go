package launch

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/initramfs"
	"github.com/c2vm/c2vm/internal/cache"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
	"github.com/c2vm/c2vm/kernel"
)

// bootDir is an output directory with Debian's cloud kernel and a
// hand-made busybox initramfs whose /init is script: it checks the QEMU
// command line (vmconfig.QEMUArgs) and the console handling against a
// real kernel, independently of the guest init.
func bootDir(t *testing.T, goarch, script string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: boots a VM")
	}
	a, err := arch.VM(goarch)
	if err != nil {
		t.Fatal(err)
	}
	fixtures.NeedTools(t, a.QEMU.Binary)
	dir := t.TempDir()
	writeKernel(t, goarch, filepath.Join(dir, "kernel"))
	files := []initramfs.File{
		{Path: "init", Mode: 0o755, Data: []byte("#!/bin/busybox sh\n" + script)},
		{Path: "bin/busybox", Mode: 0o755, Data: busybox(t, goarch)},
	}
	var ird bytes.Buffer
	if err := initramfs.Write(&ird, files, initramfs.Options{}); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"initramfs.img": ird.Bytes(),
		"rootfs.img":    make([]byte, 1<<20),
		"manifest.json": []byte(`{"artifacts":{},"vmArch":"` + goarch + `","kernel":{"version":"debian"}}`),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func writeKernel(t *testing.T, arch, dst string) {
	t.Helper()
	k, err := kernel.Open(testkernel.Deb(t, arch))
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	f, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := k.WriteImage(f); err != nil {
		t.Fatal(err)
	}
}

// busybox is Debian's busybox-static for arch, as testdata/mkfixtures.sh
// leaves it in the cache.
func busybox(t *testing.T, arch string) []byte {
	t.Helper()
	dir, err := cache.Dir()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "debs", "busybox-static-"+arch, "bin", "busybox")
	if _, err := os.Stat(p); err != nil {
		fixtures.Dir(t) // fetches it
	}
	b, err := os.ReadFile(p)
	if err != nil {
		fixtures.Skip(t, "busybox for %s: %v", arch, err)
	}
	return b
}

// TestBootBusybox: the container's output reaches stdout without kernel
// noise, the command override arrives on the kernel command line, and the
// status line becomes the exit code.
func TestBootBusybox(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			dir := bootDir(t, arch, `/bin/busybox mkdir -p /proc && /bin/busybox mount -t proc proc /proc
echo "hello from $(/bin/busybox uname -m)"
for a in $(/bin/busybox cat /proc/cmdline); do
	case $a in c2vm.cmd=*) echo "cmd ${a#c2vm.cmd=}";; esac
done
echo C2VM_EXIT_STATUS=7
/bin/busybox poweroff -f
`)
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code, err := Run(context.Background(), Options{Dir: dir, Accel: "tcg", Timeout: 3 * time.Minute,
				Cmd: []string{"echo", "hi"}, Stdout: &stdout, Stderr: &stderr})
			t.Logf("%s: booted and powered off in %s", arch, time.Since(start).Round(time.Millisecond))
			if code != 7 || err != nil {
				t.Fatalf("Run = %d, %v; stderr:\n%s", code, err, stderr.String())
			}
			cmd := base64.StdEncoding.EncodeToString([]byte(`["echo","hi"]`))
			uname := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[arch]
			if want := "hello from " + uname + "\ncmd " + cmd + "\n"; stdout.String() != want {
				t.Errorf("stdout %q, want %q", stdout.String(), want)
			}
		})
	}
}

// TestBootPanic: an init that dies panics the kernel; QEMU ends (panic=-1,
// -no-reboot) and Run says so with its own status.
func TestBootPanic(t *testing.T) {
	dir := bootDir(t, "amd64", "echo dying\nexit 3\n")
	var stdout, stderr bytes.Buffer
	code, err := Run(context.Background(), Options{Dir: dir, Accel: "tcg", Timeout: 3 * time.Minute,
		Stdout: &stdout, Stderr: &stderr})
	if code != StatusNoReport || !errors.Is(err, ErrNoReport) || !strings.Contains(err.Error(), "kernel panic") {
		t.Fatalf("Run = %d, %v; want %d and a kernel panic; stderr:\n%s", code, err, StatusNoReport, stderr.String())
	}
	if !strings.Contains(err.Error(), "Attempted to kill init") {
		t.Errorf("error %q lacks the panic message", err)
	}
	if !strings.Contains(stderr.String(), "last console lines") {
		t.Errorf("stderr lacks the last console lines:\n%s", stderr.String())
	}
}
