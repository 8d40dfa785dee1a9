package vmdir

import (
	"fmt"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/vmconfig"
)

// Config is the one vmconfig.VM of a VM directory: what qemu.sh,
// libvirt.xml, xl.cfg and firecracker.json describe and c2vm run boots.
// dir is the directory's final, absolute path. convert calls it before
// manifest.json is written, once the image, the VM arch, the forwards,
// the data disks and the verity tree are in m.
func Config(m *Manifest, dir string) vmconfig.VM {
	vm := vmconfig.VM{
		Name:      m.Name(),
		Arch:      m.VMArch,
		Memory:    m.Memory,
		CPUs:      m.CPUs,
		Dir:       dir,
		Kernel:    Kernel,
		Initrd:    Initramfs,
		Rootfs:    Rootfs,
		Forwards:  m.Forwards,
		DataDisks: m.DataDisks,
		Cmdline:   m.KernelArgs(),
	}
	if m.Verity != nil {
		vm.Verity = m.Verity.File
	}
	// convert writes vmlinux exactly for these arches.
	if a, err := arch.VM(m.VMArch); err == nil && vmconfig.NeedsVmlinux(a) {
		vm.Vmlinux = Vmlinux
	}
	return vm
}

// DiskConfig is the vmconfig.DiskVM of a directory with a disk image
// (m.Disk set): the firmware boots the disk, so it names no kernel,
// initramfs or root disk of its own.
func DiskConfig(m *Manifest, dir string) vmconfig.DiskVM {
	return vmconfig.DiskVM{
		VM: vmconfig.VM{Name: m.Name(), Arch: m.VMArch, Memory: m.Memory, CPUs: m.CPUs,
			Dir: dir, Forwards: m.Forwards},
		Disk: m.Disk.File, Format: m.Disk.Format, SecureBoot: m.Disk.SecureBoot != "",
	}
}

// Config is Config(&v.Manifest, v.Dir).
func (v *VM) Config() vmconfig.VM { return Config(&v.Manifest, v.Dir) }

// Bootable refuses a directory c2vm run cannot boot: one converted with
// --no-kernel (rootfs.img, config.json and manifest.json only).
func (v *VM) Bootable() error {
	if v.VMArch == "" || v.Kernel == nil {
		return fmt.Errorf("%s: %w (converted with --no-kernel?)", v.Dir, ErrNotVM)
	}
	return nil
}

// Shares are the host-share filesystems the VM's kernel can mount.
func (v *VM) Shares() []string {
	if v.Kernel == nil {
		return nil
	}
	return v.Kernel.Shares
}
