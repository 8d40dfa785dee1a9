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

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/internal/fixtures"
)

var update = flag.Bool("update", false, "rewrite testdata/golden")

var arches = []string{"amd64", "arm64", "riscv64"}

// testVM is a VM as convert describes it, in a fixed directory so golden
// files are stable.
func testVM(arch string) VM {
	vm := VM{Name: "c2vm-0123456789ab", Arch: arch, Dir: "/srv/vm", Kernel: "kernel",
		Initrd: "initramfs.img", Rootfs: "rootfs.img", Memory: 256, CPUs: 2, Cmdline: "quiet",
		Forwards: []plan.Forward{
			{HostIP: "127.0.0.1", HostPort: 18080, GuestPort: 8080, Proto: "tcp"},
			{HostIP: "0.0.0.0", HostPort: 5353, GuestPort: 53, Proto: "udp"},
		},
		DataDisks: []string{"data-0.img", "data-1.img"}}
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
					BootArgs: "console=ttyS0 reboot=k panic=1 pci=off c2vm.net=dhcp quiet"},
				Drives: []fcDrive{{DriveID: "rootfs", PathOnHost: "/srv/vm/rootfs.img", IsReadOnly: true},
					{DriveID: "data0", PathOnHost: "/srv/vm/data-0.img"}, {DriveID: "data1", PathOnHost: "/srv/vm/data-1.img"}},
				MachineConfig:     fcMachine{VCPUCount: 2, MemSizeMiB: 256},
				NetworkInterfaces: []fcNet{{IfaceID: "eth0", HostDevName: "c2vm-tap0"}},
			}
			if !reflect.DeepEqual(fc, want) {
				t.Errorf("got %+v\nwant %+v", fc, want)
			}
			for _, k := range []string{"boot-source", "drives", "machine-config", "network-interfaces"} {
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
	if d.OS.Kernel != "/srv/vm/kernel" || len(d.Devices.Disks) != 3 || d.Devices.Disks[0].Source.File != "/srv/vm/rootfs.img" {
		t.Fatalf("paths: kernel %q disks %+v", d.OS.Kernel, d.Devices.Disks)
	}
	for i, want := range []struct {
		file, dev string
		ro        bool
	}{{"/srv/vm/rootfs.img", "vda", true}, {"/srv/vm/data-0.img", "vdb", false}, {"/srv/vm/data-1.img", "vdc", false}} {
		got := d.Devices.Disks[i]
		if got.Source.File != want.file || got.Target.Dev != want.dev || (got.Readonly != nil) != want.ro {
			t.Errorf("disk %d: %s as %s read-only %v; want %+v", i, got.Source.File, got.Target.Dev, got.Readonly != nil, want)
		}
	}
	if d.Features != nil {
		t.Error("aarch64 domain has <features> (libvirt allows ACPI there only with UEFI)")
	}
	if !strings.HasPrefix(d.OS.Cmdline, "console=ttyAMA0 ") {
		t.Errorf("cmdline %q", d.OS.Cmdline)
	}
}

// TestQEMUScriptSyntax runs sh -n and shellcheck on
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
			if out, err := exec.Command(needTool(t, "shellcheck"), "-s", "sh", f).CombinedOutput(); err != nil {
				t.Errorf("shellcheck: %v\n%s", err, out)
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
		"C2VM_MEMORY=1024", "C2VM_CPUS=3", "C2VM_APPEND=c2vm.debug=1", "CDPATH=/tmp", "C2VM_AGENT_SOCKET=/run/c2vm-agent.sock")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("qemu.sh: %v", err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"-M", "virt", "-cpu", "max,pauth-impdef=on", "-accel", "tcg", "-m", "1024", "-smp", "3",
		"-nographic", "-no-reboot",
		"-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:18080-:8080,hostfwd=udp:0.0.0.0:5353-:53",
		"-device", "virtio-net-pci,netdev=net0",
		"-kernel", dir + "/kernel", "-initrd", dir + "/initramfs.img",
		"-drive", "file=" + dir + "/rootfs.img,if=virtio,format=raw,readonly=on",
		"-drive", "file=" + dir + "/data-0.img,if=virtio,format=raw",
		"-drive", "file=" + dir + "/data-1.img,if=virtio,format=raw",
		"-append", "console=ttyAMA0 panic=-1 quiet c2vm.debug=1",
		"-device", "virtio-serial-pci,id=c2vm-serial",
		"-chardev", "socket,id=c2vm-agent,path=/run/c2vm-agent.sock,server=on,wait=off",
		"-device", "virtserialport,bus=c2vm-serial.0,chardev=c2vm-agent,name=org.c2vm.agent.0", "-snapshot"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("qemu.sh ran\n%q\nwant\n%q", got, want)
	}
	// Under KVM the CPU is max: pauth-impdef is TCG's alone.
	cmd = exec.Command("sh", filepath.Join(dir, "qemu.sh"))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "C2VM_ACCEL=kvm")
	if out, err = cmd.Output(); err != nil || !strings.HasPrefix(string(out), "-M\nvirt\n-cpu\nmax\n-accel\nkvm\n") {
		t.Errorf("qemu.sh with KVM ran %q, %v; want -cpu max", out, err)
	}
}

func TestQEMUArgs(t *testing.T) {
	for _, tc := range []struct {
		arch, console string
		machine       []string
	}{
		{"amd64", "ttyS0", []string{"-M", "q35"}},
		{"arm64", "ttyAMA0", []string{"-M", "virt", "-cpu", "max,pauth-impdef=on"}},
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
				"-netdev user,id=net0 -device virtio-net-pci,netdev=net0",
				"-drive file=/d/r,if=virtio,format=raw,readonly=on", "-append console=" + tc.console + " panic=-1 c2vm.debug=1"} {
				if !strings.Contains(s, want) {
					t.Errorf("args %q lack %q", s, want)
				}
			}
		})
	}
	if args, _ := QEMUArgs(VM{Arch: "arm64", Kernel: "k", Initrd: "i", Rootfs: "r"}, "kvm", "/d/", ""); strings.Join(args[:4], " ") != "-M virt -cpu max" {
		t.Errorf("arm64 under KVM: %q, want -cpu max (pauth-impdef is TCG's alone)", args)
	}
	if _, err := QEMUArgs(VM{Arch: "s390x"}, "tcg", "", ""); err == nil {
		t.Error("no error for s390x")
	}
}

// TestHostileInputRefused: forwards and data disk names that would put an
// option, a shell word or markup into a config are refused by every
// target before anything is written.
func TestHostileInputRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*VM)
	}{
		{"forward address option", func(vm *VM) { vm.Forwards[0].HostIP = "127.0.0.1,hostfwd=tcp::22-:22" }},
		{"forward protocol", func(vm *VM) { vm.Forwards[0].Proto = "tcp;reboot" }},
		{"forward not canonical", func(vm *VM) { vm.Forwards[0].Proto = "TCP" }},
		{"forward port 0", func(vm *VM) { vm.Forwards[0].GuestPort = 0 }},
		{"forward IPv6", func(vm *VM) { vm.Forwards[0].HostIP = "::1" }},
		{"disk option", func(vm *VM) { vm.DataDisks[0] = "d.img,readonly=off" }},
		{"disk shell", func(vm *VM) { vm.DataDisks[0] = `d"$(reboot)".img` }},
		{"disk markup", func(vm *VM) { vm.DataDisks[0] = "d'/><x a='.img" }},
		{"disk path", func(vm *VM) { vm.DataDisks[0] = "../d.img" }},
		{"disk hidden", func(vm *VM) { vm.DataDisks[0] = ".d" }},
		{"disk empty", func(vm *VM) { vm.DataDisks[0] = "" }},
		{"26 disks", func(vm *VM) { vm.DataDisks = make([]string, 26) }},
	} {
		for _, target := range []Target{QEMUScript{}, Libvirt{}} {
			t.Run(tc.name+"/"+target.Name(), func(t *testing.T) {
				vm := testVM("amd64")
				tc.edit(&vm)
				if err := target.Write(&bytes.Buffer{}, vm); err == nil || strings.Contains(err.Error(), "\n") {
					t.Errorf("%s: err = %v, want a one-line error", target.Name(), err)
				}
			})
		}
		if strings.HasPrefix(tc.name, "disk") {
			for _, target := range []Target{XL{}, Firecracker{}} {
				t.Run(tc.name+"/"+target.Name(), func(t *testing.T) {
					vm := testVM("amd64")
					tc.edit(&vm)
					if err := target.Write(&bytes.Buffer{}, vm); err == nil {
						t.Errorf("%s: no error", target.Name())
					}
				})
			}
		}
	}
}

// TestShellWord checks the quoting qemu.sh relies on: sh reads every word
// back as the exact string, whatever it holds.
func TestShellWord(t *testing.T) {
	for _, s := range []string{
		"plain", "file=/d/r,if=virtio", "two words", `a"b`, "a'b", "$(touch /tmp/x)", "`id`", `\`, `\"`,
		"${HOME}", "a;b|c&d", "*", "~root", "a\nb", "!x", "#x", "<x>",
	} {
		t.Run(s, func(t *testing.T) {
			out, err := exec.Command("sh", "-c", "printf '%s' "+shellWord(s, 1, 1)).Output()
			if err != nil || string(out) != s {
				t.Errorf("sh read %q as %q (%v)", shellWord(s, 1, 1), out, err)
			}
		})
	}
}

func TestNoForwardsStillNetworked(t *testing.T) {
	vm := testVM("riscv64")
	vm.Forwards, vm.DataDisks = nil, nil
	var d domain
	if err := xml.Unmarshal(write(t, Libvirt{}, vm), &d); err != nil {
		t.Fatal(err)
	}
	b := string(write(t, Libvirt{}, vm))
	if !strings.Contains(b, `<qemu:arg value="user,id=c2vm-net0"></qemu:arg>`) || len(d.Devices.Disks) != 1 {
		t.Errorf("libvirt.xml without forwards:\n%s", b)
	}
}
