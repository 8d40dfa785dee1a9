package e2e

import (
	"bufio"
	"bytes"
	"context"
	"debug/pe"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
	"github.com/c2vm/c2vm/vmconfig"
	"github.com/c2vm/c2vm/vmdir"
)

// efiStub is the --efi-stub for arch: the host's installed systemd EFI
// stub when there is one, else "debian:", Debian's systemd-boot-efi for
// arch, fetched and checked by c2vm as its default kernel is.
func efiStub(t *testing.T, goarch string) string {
	t.Helper()
	a, _ := arch.VM(goarch)
	if _, err := os.Stat(a.EFI.Stub()); err == nil {
		return a.EFI.Stub()
	}
	return "debian:"
}

// volumeScript proves the data partition: the VOLUME /data is mounted
// from the disk's partition found by its label.
const volumeScript = `id; grep " /data " /proc/mounts; exit 3`

// checkStubSource: manifest.json says where the disk's EFI stub came
// from: the installed file, or Debian's package with its digest.
func checkStubSource(t *testing.T, s *vmdir.EFIStub, a arch.Arch) {
	t.Helper()
	_, err := os.Stat(a.EFI.Stub())
	switch {
	case s == nil || len(s.SHA256) != 64:
		t.Errorf("manifest.json: disk EFI stub %+v", s)
	case err == nil && s.Source != a.EFI.Stub():
		t.Errorf("EFI stub from %s, want the installed %s", s.Source, a.EFI.Stub())
	case err != nil && (s.Debian == nil || s.Debian.Package != "systemd-boot-efi" || len(s.Debian.SHA256) != 64 ||
		s.Source != "debian:"+s.Debian.Suite+"="+s.Debian.Version):
		t.Errorf("EFI stub %+v, want Debian's systemd-boot-efi", s)
	default:
		t.Logf("EFI stub: %s sha256 %s", s.Source, s.SHA256)
	}
}

// TestDiskBoot is issue 13's proof: c2vm convert --disk writes one GPT
// disk that UEFI firmware (OVMF, QEMU_EFI) boots with no -kernel: the
// container runs as the image's user, its VOLUME is a partition of the
// same disk, and its exit status comes back. The raw disk passes sfdisk
// --verify and its ESP fsck.fat; qcow2, vmdk and vhdx pass qemu-img
// check, and boot as QEMU reads them (format=vmdk, vhdx).
func TestDiskBoot(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	for _, tc := range []struct{ arch, format string }{
		{"amd64", "raw"},
		{"amd64", "qcow2"},
		{"amd64", "vmdk"},
		{"amd64", "vhdx"},
		{"arm64", "raw"},
	} {
		t.Run(tc.arch+"/"+tc.format, func(t *testing.T) {
			t.Parallel()
			a, _ := arch.VM(tc.arch)
			if _, err := os.Stat(a.EFI.Firmware); err != nil {
				fixtures.Skip(t, "firmware %s: apt-get install %s", a.EFI.Firmware, a.EFI.FirmwarePackage)
			}
			// No --efi-stub: the host's, else Debian's (arm64's on an
			// amd64 host), fetched.
			dir := convertBusybox(t, tc.arch, "--disk", tc.format,
				"--volume", "/data", "--cmd", `["/bin/sh","-c",`+jsonString(volumeScript)+`]`)
			m := readManifest(t, dir)
			checkStubSource(t, m.Disk.EFIStub, a)
			img := filepath.Join(dir, m.Disk.File)
			if _, ok := m.Artifacts[m.Disk.File]; !ok || m.Disk.Format != tc.format {
				t.Errorf("manifest.json: disk %+v, artifacts %v", m.Disk, m.Artifacts)
			}
			checkDiskImage(t, img, m.Disk)
			args, err := vmconfig.QEMUDiskArgs(vmconfig.DiskVM{VM: vmconfig.VM{Arch: tc.arch}, Disk: m.Disk.File, Format: tc.format}, "tcg", dir+"/")
			if err != nil {
				t.Fatal(err)
			}
			console, took := bootUntil(t, tc.arch, args, "uid=1000(app)")
			t.Logf("UEFI boot of the %s disk to the container's first line: %s", tc.format, took.Round(time.Millisecond))
			for _, want := range []string{"uid=1000(app) gid=1000(app)", " /data ext4 rw"} {
				if !strings.Contains(console, want) {
					t.Errorf("console lacks %q:\n%s", want, tail(console, 30))
				}
			}
			if got := exitStatus(t, console); got != 3 {
				t.Errorf("exit status %d, want 3", got)
			}
		})
	}
}

// TestDiskVerity: with --verity the hash tree is a partition of the disk
// next to the root, the UEFI boot goes through dm-verity, and the same
// disk with one byte of the root partition's file data flipped does not
// run the container and says why.
func TestDiskVerity(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	for _, rootfs := range []string{"squashfs", "erofs"} {
		t.Run(rootfs, func(t *testing.T) { diskVerity(t, rootfs) })
	}
}

func diskVerity(t *testing.T, rootfs string) {
	dir := convertBusybox(t, "amd64", "--rootfs", rootfs, "--disk", "raw", "--verity", "--efi-stub", efiStub(t, "amd64"),
		"--cmd", `["/bin/sh","-c","echo CONTAINER-RAN; exit 3"]`)
	m := readManifest(t, dir)
	img := filepath.Join(dir, m.Disk.File)
	var names []string
	for _, p := range m.Disk.Partitions {
		names = append(names, p.Name)
	}
	if strings.Join(names, " ") != "esp root root-verity" {
		t.Fatalf("partitions %q, want esp root root-verity", names)
	}
	checkDiskImage(t, img, m.Disk)
	// The root hash is on the UKI's command line too.
	if cmdline, arg := ukiCmdline(t, img, m.Disk), plan.ArgRootHash+"="+m.Verity.RootHash; !strings.Contains(" "+cmdline+" ", " "+arg+" ") {
		t.Errorf("the UKI's .cmdline %q lacks %s", cmdline, arg)
	}
	args, err := vmconfig.QEMUDiskArgs(vmconfig.DiskVM{VM: vmconfig.VM{Arch: "amd64"}, Disk: m.Disk.File, Format: "raw"}, "tcg", dir+"/")
	if err != nil {
		t.Fatal(err)
	}
	console, _ := bootUntil(t, "amd64", args, "CONTAINER-RAN")
	if got := exitStatus(t, console); got != 3 {
		t.Fatalf("exit status %d, want 3", got)
	}

	// Flip a byte of file data inside the root partition: a copy of the
	// partition goes through flipFileByte (TestVerity's) and back.
	root := m.Disk.Partitions[1]
	part := filepath.Join(t.TempDir(), "root.img")
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(part, b[root.Offset:root.Offset+root.Size], 0o644); err != nil {
		t.Fatal(err)
	}
	flipFileByte(t, part)
	flipped, err := os.ReadFile(part)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[root.Offset:], flipped)
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	console, _ = bootUntil(t, "amd64", args, "Linux version")
	if strings.Contains(console, "CONTAINER-RAN") {
		t.Errorf("the container ran from a corrupted root:\n%s", tail(console, 30))
	}
	if i := strings.Index(console, plan.ErrorLine); i < 0 || !strings.Contains(console[i:], "dm-verity") {
		t.Errorf("no %s naming dm-verity:\n%s", plan.ErrorLine, tail(console, 30))
	}
}

// checkDiskImage runs the real tools over the disk.
func checkDiskImage(t *testing.T, img string, d *vmdir.DiskInfo) {
	t.Helper()
	if d.Format != "raw" {
		fixtures.NeedTools(t, "qemu-img")
		if out, err := exec.Command("qemu-img", "check", "-f", d.Format, img).CombinedOutput(); err != nil {
			t.Errorf("qemu-img check: %v\n%s", err, out)
		}
		return
	}
	fixtures.NeedTools(t, "sfdisk", "fsck.fat")
	if out, err := exec.Command("sfdisk", "--verify", img).CombinedOutput(); err != nil || strings.Contains(strings.ToLower(string(out)), "warn") {
		t.Errorf("sfdisk --verify: %v\n%s", err, out)
	}
	if out, err := exec.Command("fsck.fat", "-n", extractESP(t, img, d)).CombinedOutput(); err != nil {
		t.Errorf("fsck.fat -n: %v\n%s", err, out)
	}
}

// extractESP copies a raw disk's EFI system partition into a file, with
// dd by its offset, as a user would check it.
func extractESP(t *testing.T, img string, d *vmdir.DiskInfo) string {
	t.Helper()
	esp := filepath.Join(t.TempDir(), "esp.img")
	p := d.Partitions[0]
	dd := exec.Command("dd", "if="+img, "of="+esp, "bs=1M", "skip="+itoa(p.Offset>>20), "count="+itoa(p.Size>>20), "status=none")
	if out, err := dd.CombinedOutput(); err != nil {
		t.Fatalf("dd: %v\n%s", err, out)
	}
	return esp
}

// extractUKI copies the UKI off a raw disk's ESP with mcopy.
func extractUKI(t *testing.T, img string, d *vmdir.DiskInfo) string {
	t.Helper()
	fixtures.NeedTools(t, "mcopy")
	uki := filepath.Join(t.TempDir(), "uki.efi")
	if out, err := exec.Command("mcopy", "-i", extractESP(t, img, d), "::"+d.BootFile, uki).CombinedOutput(); err != nil {
		t.Fatalf("mcopy %s: %v\n%s", d.BootFile, err, out)
	}
	return uki
}

// ukiCmdline reads the kernel command line the firmware boots: the
// .cmdline section of the UKI that mcopy reads off a raw disk's ESP.
func ukiCmdline(t *testing.T, img string, d *vmdir.DiskInfo) string {
	t.Helper()
	f, err := pe.Open(extractUKI(t, img, d))
	if err != nil {
		t.Fatalf("%s: %v", d.BootFile, err)
	}
	defer f.Close()
	s := f.Section(".cmdline")
	if s == nil {
		t.Fatalf("%s has no .cmdline section", d.BootFile)
	}
	b, err := s.Data()
	if err != nil {
		t.Fatal(err)
	}
	// The section's raw data is padded to the file alignment with NULs.
	return strings.TrimRight(string(b[:min(len(b), int(s.VirtualSize))]), "\x00")
}

// TestDiskReproducible: two conversions of the same image give the same
// disk bytes, in every format.
func TestDiskReproducible(t *testing.T) {
	stub := efiStub(t, "amd64")
	for _, format := range []string{"raw", "qcow2", "vmdk", "vhdx"} {
		t.Run(format, func(t *testing.T) {
			var disks []string
			for range 2 {
				dir := convertBusybox(t, "amd64", "--disk", format, "--efi-stub", stub, "--volume", "/data")
				disks = append(disks, filepath.Join(dir, readManifest(t, dir).Disk.File))
			}
			if !sameFile(t, disks[0], disks[1]) {
				t.Errorf("%s and %s differ", disks[0], disks[1])
			}
		})
	}
}

// TestDiskErrors: what cannot work is refused in one line.
func TestDiskErrors(t *testing.T) {
	fix := fixtures.Dir(t)
	img := "oci:" + filepath.Join(fix, "busybox-amd64")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bad format", []string{"--disk", "vdi"}, "--disk: unknown disk format \"vdi\": want raw, qcow2, vmdk, vhdx"},
		{"no kernel", []string{"--disk", "raw", "--no-kernel"}, "--disk needs a kernel"},
		{"stub alone", []string{"--efi-stub", "/x"}, "--efi-stub is only used with --disk"},
		{"missing stub", []string{"--disk", "raw", "--efi-stub", "/nonexistent/stub"}, "/nonexistent/stub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := c2vm(t, append([]string{"convert", "-q", img, "-o", filepath.Join(t.TempDir(), "vm")}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
				t.Errorf("exit %d, stderr %q; want a short error with %q", code, stderr, tc.want)
			}
		})
	}
	t.Run("arm64 stub absent, offline, empty cache", func(t *testing.T) {
		const p = "/usr/lib/systemd/boot/efi/linuxaa64.efi.stub"
		if _, err := os.Stat(p); err == nil {
			t.Skip(p + " is installed")
		}
		empty := t.TempDir()
		code, stderr := offline(t, empty, "convert", "-q", "oci:"+filepath.Join(fix, "busybox-arm64"), "--kernel", testkernel.Deb(t, "arm64"),
			"--init", initFor(t, "arm64"), "--disk", "raw", "-o", filepath.Join(t.TempDir(), "vm"))
		want := p + " is not installed, systemd-boot-efi:arm64 is not in the cache " + empty + " and the mirror is unreachable"
		if code == 0 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") > 0 {
			t.Errorf("exit %d, stderr %q; want one line with %q", code, stderr, want)
		}
	})
	t.Run("debian stub version absent", func(t *testing.T) {
		code, stderr := c2vm(t, "convert", "-q", img, "-o", filepath.Join(t.TempDir(), "vm"), "--kernel", testkernel.Deb(t, "amd64"),
			"--init", initFor(t, "amd64"), "--disk", "raw", "--efi-stub", "debian:bookworm=0-nope")
		if want := `Packages lists systemd-boot-efi at `; code == 0 || !strings.Contains(stderr, want) || !strings.Contains(stderr, `not "0-nope"`) {
			t.Errorf("exit %d, stderr %q; want %q… not \"0-nope\"", code, stderr, want)
		}
	})
}

// TestDiskDebianStub: --efi-stub debian:SUITE fetches Debian's
// systemd-boot-efi for the VM's arch (amd64 here, whatever the host has
// installed), records it, and the version it resolved pins the same
// stub again: the same disk bytes.
func TestDiskDebianStub(t *testing.T) {
	dir := convertBusybox(t, "amd64", "--disk", "raw", "--efi-stub", "debian:bookworm")
	s := readManifest(t, dir).Disk.EFIStub
	if s == nil || s.Debian == nil || s.Debian.Suite != "bookworm" || s.Source != "debian:bookworm="+s.Debian.Version {
		t.Fatalf("manifest.json: EFI stub %+v", s)
	}
	pinned := convertBusybox(t, "amd64", "--disk", "raw", "--efi-stub", s.Source)
	if !sameFile(t, filepath.Join(dir, "disk.img"), filepath.Join(pinned, "disk.img")) {
		t.Errorf("--efi-stub %s gives another disk than debian:bookworm", s.Source)
	}
}

// TestDiskLibvirt boots libvirt-disk.xml (<os firmware="efi">) in a
// real libvirtd, as TestLibvirtBoot does libvirt.xml: on amd64 (q35,
// OVMF) and on arm64 (virt under TCG, AAVMF), libvirt picking each
// firmware from the descriptors Debian's ovmf and qemu-efi-aarch64
// install in /usr/share/qemu/firmware.
func TestDiskLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	needLibvirt(t)
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			dir := convertBusybox(t, arch, "--disk", "raw", "--efi-stub", efiStub(t, arch),
				"--cmd", `["/bin/sh","-c","echo hello from the disk; exit 5"]`)
			defineDomainFile(t, dir, "libvirt-disk.xml").run(8*time.Minute, "hello from the disk", 5)
		})
	}
}

// TestDiskBootTime measures UEFI boot-to-entrypoint against direct kernel
// boot of the same conversion under TCG. It reports, asserting only that
// both boot.
func TestDiskBootTime(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	dir := convertBusybox(t, "amd64", "--disk", "raw", "--efi-stub", efiStub(t, "amd64"))
	disk, err := vmconfig.QEMUDiskArgs(vmconfig.DiskVM{VM: vmconfig.VM{Arch: "amd64"}, Disk: "disk.img", Format: "raw"}, "tcg", dir+"/")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := vmconfig.QEMUArgs(vmconfig.VM{Arch: "amd64", Kernel: "kernel", Initrd: "initramfs.img", Rootfs: "rootfs.img"}, "tcg", dir+"/", "")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "hello from c2vm"
	_, tUEFI := bootUntil(t, "amd64", disk, marker)
	_, tDirect := bootUntil(t, "amd64", direct, marker)
	t.Logf("TCG boot to the container's output: UEFI disk %s, direct kernel boot %s (UEFI adds %s)",
		tUEFI.Round(time.Millisecond), tDirect.Round(time.Millisecond), (tUEFI - tDirect).Round(time.Millisecond))
}

// bootUntil runs QEMU for arch with args until the VM powers off, and
// returns the console and how long after QEMU's start marker appeared.
func bootUntil(t *testing.T, arch string, args []string, marker string) (string, time.Duration) {
	t.Helper()
	bin := map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}[arch]
	fixtures.NeedTools(t, bin)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var took time.Duration
	var console bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			if took == 0 && strings.Contains(sc.Text(), marker) {
				took = time.Since(start)
			}
			console.WriteString(strings.TrimRight(sc.Text(), "\r") + "\n")
		}
		io.Copy(io.Discard, pr)
	}()
	err := cmd.Wait()
	pw.Close()
	<-done
	if ctx.Err() != nil {
		t.Fatalf("VM did not power off within 6m; console:\n%s", tail(console.String(), 40))
	}
	if err != nil {
		t.Fatalf("%s: %v; console:\n%s", bin, err, tail(console.String(), 40))
	}
	if took == 0 {
		t.Fatalf("console never showed %q:\n%s", marker, tail(console.String(), 40))
	}
	return console.String(), took
}

func readManifest(t *testing.T, dir string) *vmdir.Manifest {
	t.Helper()
	m, err := vmdir.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Disk == nil {
		t.Fatalf("manifest.json in %s lists no disk", dir)
	}
	return m
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
