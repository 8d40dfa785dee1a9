package vmconfig

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

var arches = []string{"amd64", "arm64", "riscv64"}

// testVM is a VM as convert describes it, in a fixed directory so golden
// files are stable.
func testVM(arch string) VM {
	vm := VM{Name: "c2vm-0123456789ab", Arch: arch, Dir: "/srv/vm", Kernel: "kernel",
		Initrd: "initramfs.img", Rootfs: "rootfs.img", Memory: 256, CPUs: 2, Cmdline: "quiet"}
	if arch == "amd64" {
		vm.Vmlinux = "vmlinux"
	}
	return vm
}

func write(t *testing.T, target Target, vm VM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := target.Write(&buf, vm); err != nil {
		t.Fatalf("%s for %s: %v", target.Name(), vm.Arch, err)
	}
	return buf.Bytes()
}

// TestGolden pins every target's output per arch; `go test -update`
// rewrites the files after a deliberate change.
func TestGolden(t *testing.T) {
	for _, arch := range arches {
		for _, target := range All() {
			t.Run(arch+"/"+target.Name(), func(t *testing.T) {
				got := write(t, target, testVM(arch))
				golden := filepath.Join("testdata", "golden", arch, target.Name())
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s (go test -update after a deliberate change):\n%s", target.Name(), golden, got)
				}
			})
		}
	}
}

// TestFirecrackerPaths parses firecracker.json as Firecracker's
// --config-file schema and checks it names the artifacts in the directory.
func TestFirecrackerPaths(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			vm := testVM(arch)
			var c struct {
				BootSource struct {
					Kernel, Initrd, Args string
				} `json:"-"`
				Raw map[string]json.RawMessage
			}
			b := write(t, Firecracker{}, vm)
			if err := json.Unmarshal(b, &c.Raw); err != nil {
				t.Fatal(err)
			}
			var fc fcConfig
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&fc); err != nil {
				t.Fatal(err)
			}
			kernel := "/srv/vm/kernel"
			if arch == "amd64" {
				kernel = "/srv/vm/vmlinux" // Firecracker x86_64 boots only an ELF vmlinux
			}
			want := fcConfig{
				BootSource: fcBoot{KernelImagePath: kernel, InitrdPath: "/srv/vm/initramfs.img",
					BootArgs: "console=ttyS0 reboot=k panic=1 pci=off quiet"},
				Drives:        []fcDrive{{DriveID: "rootfs", PathOnHost: "/srv/vm/rootfs.img", IsReadOnly: true}},
				MachineConfig: fcMachine{VCPUCount: 2, MemSizeMiB: 256},
			}
			if !reflect.DeepEqual(fc, want) {
				t.Errorf("got %+v\nwant %+v", fc, want)
			}
			for _, k := range []string{"boot-source", "drives", "machine-config"} {
				if _, ok := c.Raw[k]; !ok {
					t.Errorf("no %q object", k)
				}
			}
		})
	}
}

func TestFirecrackerAmd64NeedsVmlinux(t *testing.T) {
	vm := testVM("amd64")
	vm.Vmlinux = ""
	if err := (Firecracker{}).Write(&bytes.Buffer{}, vm); err == nil {
		t.Error("no error for an amd64 VM without a vmlinux")
	}
}

// needTool skips when a tool is missing (fails under C2VM_E2E=1) and
// returns its path.
func needTool(t *testing.T, name string) string {
	t.Helper()
	fixtures.NeedTools(t, name)
	p, _ := exec.LookPath(name)
	return p
}

// TestLibvirtValidates checks libvirt.xml against libvirt's own RelaxNG
// schema (virt-xml-validate from libvirt-clients; it needs xmllint from
// libxml2-utils).
func TestLibvirtValidates(t *testing.T) {
	validate := needTool(t, "virt-xml-validate")
	needTool(t, "xmllint")
	for _, arch := range arches {
		t.Run(arch, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "libvirt.xml")
			if err := os.WriteFile(f, write(t, Libvirt{}, testVM(arch)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(validate, f, "domain").CombinedOutput()
			if err != nil {
				t.Fatalf("virt-xml-validate: %v\n%s", err, out)
			}
		})
	}
}

// TestLibvirtDefine loads libvirt.xml with `virsh define` into libvirt's
// test driver, which parses a domain as the real drivers do but runs in
// virsh itself (no libvirtd needed).
func TestLibvirtDefine(t *testing.T) {
	virsh := needTool(t, "virsh")
	for _, arch := range arches {
		t.Run(arch, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "libvirt.xml")
			if err := os.WriteFile(f, write(t, Libvirt{}, testVM(arch)), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(virsh, "-q", "-c", "test:///default", "define "+f+"; dumpxml c2vm-0123456789ab").CombinedOutput()
			if err != nil {
				t.Fatalf("virsh define: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "<readonly/>") {
				t.Errorf("the defined domain lost the read-only disk:\n%s", out)
			}
		})
	}
}

func TestLibvirtContent(t *testing.T) {
	var d domain
	if err := xml.Unmarshal(write(t, Libvirt{}, testVM("arm64")), &d); err != nil {
		t.Fatal(err)
	}
	if d.OS.Kernel != "/srv/vm/kernel" || d.Devices.Disk.Source.File != "/srv/vm/rootfs.img" {
		t.Errorf("paths: kernel %q disk %q", d.OS.Kernel, d.Devices.Disk.Source.File)
	}
	if d.Features != nil {
		t.Error("aarch64 domain has <features> (libvirt allows ACPI there only with UEFI)")
	}
	if !strings.HasPrefix(d.OS.Cmdline, "console=ttyAMA0 ") {
		t.Errorf("cmdline %q", d.OS.Cmdline)
	}
}

// TestQEMUScriptSyntax runs sh -n (and shellcheck when installed) on
// qemu.sh for every arch.
func TestQEMUScriptSyntax(t *testing.T) {
	for _, arch := range arches {
		t.Run(arch, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "qemu.sh")
			if err := os.WriteFile(f, write(t, QEMUScript{}, testVM(arch)), 0o755); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command("sh", "-n", f).CombinedOutput(); err != nil {
				t.Fatalf("sh -n: %v\n%s", err, out)
			}
			if sc, err := exec.LookPath("shellcheck"); err == nil {
				if out, err := exec.Command(sc, "-s", "sh", f).CombinedOutput(); err != nil {
					t.Errorf("shellcheck: %v\n%s", err, out)
				}
			}
		})
	}
}

// TestQEMUScriptRuns runs qemu.sh from another directory with a fake QEMU
// on PATH that prints its arguments: the script finds its own directory,
// honours the C2VM_* overrides and passes extra arguments through.
func TestQEMUScriptRuns(t *testing.T) {
	dir, bin := t.TempDir(), t.TempDir()
	vm := testVM("arm64")
	vm.Dir = dir
	if err := os.WriteFile(filepath.Join(dir, "qemu.sh"), write(t, QEMUScript{}, vm), 0o755); err != nil {
		t.Fatal(err)
	}
	fake := "#!/bin/sh\nfor a; do echo \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(bin, "qemu-system-aarch64"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", filepath.Join(dir, "qemu.sh"), "-snapshot")
	cmd.Dir = "/"
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "C2VM_ACCEL=tcg",
		"C2VM_MEMORY=1024", "C2VM_CPUS=3", "C2VM_APPEND=c2vm.debug=1", "CDPATH=/tmp")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qemu.sh: %v", err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"-M", "virt", "-cpu", "max", "-accel", "tcg", "-m", "1024", "-smp", "3",
		"-nographic", "-no-reboot", "-nic", "none",
		"-kernel", dir + "/kernel", "-initrd", dir + "/initramfs.img",
		"-drive", "file=" + dir + "/rootfs.img,if=virtio,format=raw,readonly=on",
		"-append", "console=ttyAMA0 panic=-1 quiet c2vm.debug=1", "-snapshot"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("qemu.sh ran\n%q\nwant\n%q", got, want)
	}
}

func TestQEMUArgs(t *testing.T) {
	for _, tc := range []struct {
		arch, console string
		machine       []string
	}{
		{"amd64", "ttyS0", []string{"-M", "q35"}},
		{"arm64", "ttyAMA0", []string{"-M", "virt", "-cpu", "max"}},
		{"riscv64", "ttyS0", []string{"-M", "virt"}},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			args, err := QEMUArgs(VM{Arch: tc.arch, Kernel: "k", Initrd: "i", Rootfs: "r"}, "tcg", "/d/", "c2vm.debug=1")
			if err != nil {
				t.Fatal(err)
			}
			s := strings.Join(args, " ")
			if !reflect.DeepEqual(args[:len(tc.machine)], tc.machine) {
				t.Errorf("args %q do not start with %q", s, tc.machine)
			}
			for _, want := range []string{"-accel tcg", "-m 512", "-smp 1", "-kernel /d/k", "-initrd /d/i",
				"-drive file=/d/r,if=virtio,format=raw,readonly=on", "-append console=" + tc.console + " panic=-1 c2vm.debug=1"} {
				if !strings.Contains(s, want) {
					t.Errorf("args %q lack %q", s, want)
				}
			}
		})
	}
	if _, err := QEMUArgs(VM{Arch: "s390x"}, "tcg", "", ""); err == nil {
		t.Error("no error for s390x")
	}
}
