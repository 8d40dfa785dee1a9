package vmconfig

import (
	"fmt"
	"io"

	"github.com/c2vm/c2vm/arch"
)

// DiskVM is a VM booted from its one disk image by UEFI firmware (c2vm
// convert --disk): the firmware finds the Unified Kernel Image on the
// disk's EFI system partition, so there is no -kernel, and the root and
// data file systems are partitions of that disk.
type DiskVM struct {
	VM
	Disk   string // the image's file name in Dir
	Format string // as QEMU names it: "raw", "qcow2", "vmdk" or "vhdx"
	// SecureBoot is set when the UKI is signed: libvirt-disk.xml asks for
	// firmware that enforces Secure Boot.
	SecureBoot bool
}

// DiskTarget is a configuration file for a DiskVM.
type DiskTarget interface {
	Name() string
	Write(w io.Writer, vm DiskVM) error
}

// DiskTargets lists the disk-boot configurations: qemu-disk.sh and
// libvirt-disk.xml.
func DiskTargets() []DiskTarget { return []DiskTarget{QEMUDiskScript{}, LibvirtDisk{}} }

// QEMUDiskArgs is QEMU's command line for a DiskVM: the machine, the
// firmware, the disk as one writable virtio-blk drive, and the same NIC
// and console as QEMUArgs.
func QEMUDiskArgs(vm DiskVM, accel, dir string) ([]string, error) {
	return qemuDiskArgs(vm, accel, fmt.Sprint(vm.memory()), fmt.Sprint(vm.cpus()), dir)
}

func qemuDiskArgs(vm DiskVM, accel, memory, cpus, dir string) ([]string, error) {
	a, err := arch.VM(vm.Arch)
	if err != nil {
		return nil, err
	}
	if a.EFI == nil {
		return nil, fmt.Errorf("no UEFI firmware known for %s", a.GOARCH)
	}
	fw := a.EFI.Firmware
	nd, err := netdev(netdevID, vm.Forwards)
	if err != nil {
		return nil, err
	}
	return append(machineArgs(a, accel),
		"-accel", accel,
		"-m", memory,
		"-smp", cpus,
		"-nographic", "-no-reboot",
		"-bios", fw,
		"-netdev", nd,
		"-device", netDevice+",netdev="+netdevID,
		"-drive", "file="+dir+vm.Disk+",if=virtio,format="+vm.Format,
	), nil
}

// QEMUDiskScript writes qemu-disk.sh.
type QEMUDiskScript struct{}

// Name implements DiskTarget.
func (QEMUDiskScript) Name() string { return "qemu-disk.sh" }

var qemuDiskTmpl = withAccel("qemu-disk.sh", `#!/bin/sh
# Boots {{.Name}} ({{.Arch}}) from its disk image {{.Disk}} with UEFI
# firmware ({{.Firmware}}, from Debian's {{.Package}} package): the
# kernel, initramfs and command line are the Unified Kernel Image on the
# disk's EFI system partition; root and data file systems are its other
# partitions (the data partitions are written by the VM). The console is
# this terminal; the last line is C2VM_EXIT_STATUS=<n>. Written by c2vm.
#   C2VM_ACCEL=auto|kvm|tcg  accelerator (auto: KVM only when it is this
#                            host's arch and a probe VM really runs: the
#                            kernel beside the disk, or qemu.sh's answer)
#   C2VM_MEMORY, C2VM_CPUS   override memory (MiB) and CPUs
#   extra arguments are passed to QEMU.
set -eu
DIR=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
{{template "accel" .}}exec {{.Binary}} \
	{{.Args}}\
	"$@"
`)

// Write implements DiskTarget.
func (QEMUDiskScript) Write(w io.Writer, vm DiskVM) error {
	a, err := arch.VM(vm.Arch)
	if err != nil {
		return err
	}
	args, err := qemuDiskArgs(vm, phAccel, phMemory, phCPUs, phDir)
	if err != nil {
		return err
	}
	d, err := probeData(vm.VM, a)
	if err != nil {
		return err
	}
	// The disk may travel without the kernel beside it: then only a
	// cached answer gives KVM.
	d["ProbeIf"] = `[ -f "$DIR/` + vm.Kernel + `" ]`
	d["Name"], d["Arch"], d["Disk"], d["Args"] = vm.Name, vm.Arch, vm.Disk, shellWords(args, vm.VM)
	d["Firmware"], d["Package"] = a.EFI.Firmware, a.EFI.FirmwarePackage
	return qemuDiskTmpl.Execute(w, d)
}

// LibvirtDisk writes libvirt-disk.xml: libvirt.xml's domain booting the
// disk with UEFI firmware, which libvirt picks from the firmware
// descriptors the ovmf and qemu-efi-aarch64 packages install
// (https://libvirt.org/formatdomain.html#bios-bootloader, firmware="efi").
type LibvirtDisk struct{}

// Name implements DiskTarget.
func (LibvirtDisk) Name() string { return "libvirt-disk.xml" }

// Write implements DiskTarget.
func (LibvirtDisk) Write(w io.Writer, vm DiskVM) error {
	d, err := libvirtDomain(VM{Name: vm.Name, Arch: vm.Arch, Memory: vm.Memory, CPUs: vm.CPUs, Forwards: vm.Forwards})
	if err != nil {
		return err
	}
	d.OS.Firmware = "efi"
	// Without secure boot: libvirt would otherwise prefer Debian's
	// firmware with Microsoft's keys enrolled (40-edk2-*-secure-enrolled.json
	// in /usr/share/qemu/firmware), which refuses the unsigned UKI.
	d.OS.Features = &fwFeatures{Feature: []fwFeature{{Enabled: "no", Name: "secure-boot"}}}
	if vm.SecureBoot {
		// A signed UKI: firmware that enforces Secure Boot, which needs
		// SMM on q35. Its db must hold the signing certificate: libvirt's
		// enrolled-keys firmware holds Microsoft's, so the domain's NVRAM
		// is the user's to enroll (or to point at VARS with the cert).
		d.OS.Features = &fwFeatures{Feature: []fwFeature{{Enabled: "yes", Name: "secure-boot"}}}
		if vm.Arch == "amd64" {
			d.Features = &features{SMM: &smm{State: "on"}}
		}
	}
	d.OS.Kernel, d.OS.Initrd, d.OS.Cmdline = "", "", ""
	if vm.Arch == "arm64" {
		// UEFI provides ACPI on arm64, which libvirt allows only with it.
		d.Features = &features{ACPI: &struct{}{}}
	}
	root := newDisk(vm.path(vm.Disk), diskDev("vd", 0), false)
	root.Driver.Type = vm.Format
	d.Devices.Disks = []disk{root}
	return writeDomain(w, d)
}

// fwFeatures is <os><firmware>: features the firmware libvirt picks must
// have or lack (https://libvirt.org/formatdomain.html#bios-bootloader).
type fwFeatures struct {
	Feature []fwFeature `xml:"feature"`
}

type fwFeature struct {
	Enabled string `xml:"enabled,attr"`
	Name    string `xml:"name,attr"`
}
