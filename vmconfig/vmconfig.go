// Package vmconfig writes ready-to-boot hypervisor configurations for a
// converted VM: qemu.sh, libvirt.xml, xl.cfg and firecracker.json. One
// Target per format, all from one VM description.
//
//	vm := vmconfig.VM{Name: "c2vm-0123456789ab", Arch: "arm64", Dir: "/abs/out",
//		Kernel: "kernel", Initrd: "initramfs.img", Rootfs: "rootfs.img"}
//	for _, t := range vmconfig.All() {
//		t.Write(f, vm) // f: Dir/t.Name()
//	}
//
// libvirt.xml, xl.cfg and firecracker.json name the artifacts by absolute
// path (their tools resolve relative paths against their own working
// directory), so Dir must be the output directory's final location;
// qemu.sh finds its own directory and can be moved with the artifacts.
package vmconfig

import (
	"io"
	"path/filepath"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// VM describes a converted VM; the zero value of Memory and CPUs is the
// default.
type VM struct {
	Name   string // domain name
	Arch   string // GOARCH of the VM: amd64, arm64, riscv64
	Memory int    // MiB; 0 = DefaultMemory
	CPUs   int    // 0 = DefaultCPUs
	// Dir is the output directory's absolute path: configs whose tools
	// need absolute paths (libvirt, xl, Firecracker) name files in it.
	Dir                    string
	Kernel, Initrd, Rootfs string // file names in Dir
	Vmlinux                string // "" when none (Firecracker then boots Kernel)
	Cmdline                string // extra kernel arguments
	// Forwards are the published ports (user-mode networking's hostfwd
	// for QEMU and libvirt; a tap for Xen and Firecracker).
	Forwards []plan.Forward
	// DataDisks are writable ext4 images in Dir (the VOLUMEs), attached
	// after the root disk in this order; the init finds each by label.
	DataDisks []string
	// Verity is the root disk's dm-verity hash tree (rootfs.verity) in
	// Dir, "" for none: attached read-only right after the root disk; the
	// init finds it by its superblock.
	Verity string
}

// disks lists the disk files in attach order — the root, its hash tree,
// the data disks — after checking their names, and how many of the first
// are read-only.
func (vm VM) disks() (files []string, readOnly int, err error) {
	files = []string{vm.Rootfs}
	if vm.Verity != "" {
		files = append(files, vm.Verity)
	}
	readOnly = len(files)
	files = append(files, vm.DataDisks...)
	if err := checkDataDisks(files[1:]); err != nil {
		return nil, 0, err
	}
	return files, readOnly, nil
}

// Defaults.
const (
	DefaultMemory = 512
	DefaultCPUs   = 1
)

func (vm VM) memory() int {
	if vm.Memory > 0 {
		return vm.Memory
	}
	return DefaultMemory
}

func (vm VM) cpus() int {
	if vm.CPUs > 0 {
		return vm.CPUs
	}
	return DefaultCPUs
}

func (vm VM) path(name string) string { return filepath.Join(vm.Dir, name) }

// Target is one hypervisor's configuration file.
type Target interface {
	Name() string // file name in the output directory
	Write(w io.Writer, vm VM) error
}

// All lists every target c2vm writes.
func All() []Target {
	return []Target{QEMUScript{}, Libvirt{}, XL{}, Firecracker{}}
}
