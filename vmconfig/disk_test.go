package vmconfig

import (
	"bytes"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/arch"
)

func testDiskVM(arch string) DiskVM {
	return DiskVM{VM: testVM(arch), Disk: "disk.qcow2", Format: "qcow2"}
}

func writeDisk(t *testing.T, target DiskTarget, vm DiskVM) string {
	t.Helper()
	var buf bytes.Buffer
	if err := target.Write(&buf, vm); err != nil {
		t.Fatalf("%s for %s: %v", target.Name(), vm.Arch, err)
	}
	p := filepath.Join(t.TempDir(), target.Name())
	if err := os.WriteFile(p, buf.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDiskTargets checks qemu-disk.sh (sh -n, shellcheck) and
// libvirt-disk.xml (libvirt's schema; UEFI without secure boot; the one
// disk writable, in its format) for both UEFI arches.
func TestDiskTargets(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch+"/qemu-disk.sh", func(t *testing.T) {
			f := writeDisk(t, QEMUDiskScript{}, testDiskVM(arch))
			if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
				t.Fatalf("sh -n: %v\n%s", err, out)
			}
			if out, err := exec.Command(needTool(t, "shellcheck"), "-s", "sh", f).CombinedOutput(); err != nil {
				t.Errorf("shellcheck: %v\n%s", err, out)
			}
			b, _ := os.ReadFile(f)
			for _, want := range []string{"-bios " + efiOf(t, arch).Firmware, `"file=$DIR/disk.qcow2,if=virtio,format=qcow2"`} {
				if !strings.Contains(string(b), want) {
					t.Errorf("qemu-disk.sh lacks %q:\n%s", want, b)
				}
			}
			// Only the KVM probe boots the kernel beside the disk, when
			// it is there; the VM boots from the disk.
			_, boot, _ := strings.Cut(string(b), "\nexec ")
			if boot == "" || strings.Contains(boot, "-kernel") {
				t.Error("qemu-disk.sh boots a kernel directly")
			}
			if !strings.Contains(string(b), "elif [ -f \"$DIR/kernel\" ]; then\n\t\t\tif timeout 5 ") {
				t.Errorf("qemu-disk.sh has no KVM probe of the kernel beside it:\n%s", b)
			}
		})
		t.Run(arch+"/libvirt-disk.xml", func(t *testing.T) {
			f := writeDisk(t, LibvirtDisk{}, testDiskVM(arch))
			validate := needTool(t, "virt-xml-validate")
			needTool(t, "xmllint")
			if out, err := exec.Command(validate, f, "domain").CombinedOutput(); err != nil {
				t.Fatalf("virt-xml-validate: %v\n%s", err, out)
			}
			b, _ := os.ReadFile(f)
			var d domain
			if err := xml.Unmarshal(b, &d); err != nil {
				t.Fatal(err)
			}
			if d.OS.Firmware != "efi" || d.OS.Kernel != "" || d.OS.Features == nil || d.OS.Features.Feature[0].Name != "secure-boot" {
				t.Errorf("<os> %+v: want firmware=efi, no kernel, secure boot off", d.OS)
			}
			if len(d.Devices.Disks) != 1 || d.Devices.Disks[0].Source.File != "/srv/vm/disk.qcow2" ||
				d.Devices.Disks[0].Driver.Type != "qcow2" || d.Devices.Disks[0].Readonly != nil {
				t.Errorf("disks %+v: want the one writable qcow2 disk", d.Devices.Disks)
			}
		})
	}
}

func efiOf(t *testing.T, goarch string) *arch.EFI {
	t.Helper()
	a, err := arch.VM(goarch)
	if err != nil || a.EFI == nil {
		t.Fatalf("%s: no UEFI row (%v)", goarch, err)
	}
	return a.EFI
}
