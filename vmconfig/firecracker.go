package vmconfig

import (
	"github.com/c2vm/c2vm/arch"

	"encoding/json"
	"fmt"
	"io"
)

// Firecracker writes firecracker.json, the file `firecracker
// --config-file` reads (its API's boot-source, drives, machine-config and
// network-interfaces objects): the root disk read-only, the data disks
// writable, one NIC on the tap FirecrackerTap. On x86_64 Firecracker boots only an uncompressed ELF vmlinux;
// its devices are virtio-mmio, whose module the initramfs carries.
type Firecracker struct{}

// Name implements Target.
func (Firecracker) Name() string { return "firecracker.json" }

type fcConfig struct {
	BootSource        fcBoot    `json:"boot-source"`
	Drives            []fcDrive `json:"drives"`
	MachineConfig     fcMachine `json:"machine-config"`
	NetworkInterfaces []fcNet   `json:"network-interfaces"`
}

type fcNet struct {
	IfaceID     string `json:"iface_id"`
	HostDevName string `json:"host_dev_name"`
}

// FirecrackerTap is the host tap device firecracker.json's NIC uses
// (create it first: ip tuntap add c2vm-tap0 mode tap); the guest
// configures eth0 by DHCP, so the tap's network needs a DHCP server.
// Published ports are not applied: Firecracker has no user-mode network.
const FirecrackerTap = "c2vm-tap0"

type fcBoot struct {
	KernelImagePath string `json:"kernel_image_path"`
	InitrdPath      string `json:"initrd_path"`
	BootArgs        string `json:"boot_args"`
}

type fcDrive struct {
	DriveID      string `json:"drive_id"`
	PathOnHost   string `json:"path_on_host"`
	IsRootDevice bool   `json:"is_root_device"`
	IsReadOnly   bool   `json:"is_read_only"`
}

type fcMachine struct {
	VCPUCount  int  `json:"vcpu_count"`
	MemSizeMiB int  `json:"mem_size_mib"`
	SMT        bool `json:"smt"`
}

// NeedsVmlinux reports whether a VM of arch a needs an uncompressed ELF
// vmlinux beside its kernel: Firecracker on x86_64 boots nothing else.
func NeedsVmlinux(a arch.Arch) bool { return a.GOARCH == "amd64" }

// Write implements Target.
func (Firecracker) Write(w io.Writer, vm VM) error {
	kernel := vm.Kernel
	switch {
	case vm.Arch == "amd64" && vm.Vmlinux != "":
		kernel = vm.Vmlinux
	case vm.Arch == "amd64":
		return fmt.Errorf("firecracker on x86_64 needs a vmlinux, none was extracted")
	case vm.Arch != "arm64":
		return json.NewEncoder(w).Encode(map[string]string{"error": "Firecracker runs only x86_64 and aarch64 guests"})
	}
	// Firecracker's serial is an 8250 UART on both arches, not QEMU
	// virt's PL011 (ttyAMA0).
	args := "console=ttyS0 reboot=k panic=1 pci=off " + dhcpArg
	if vm.Cmdline != "" {
		args += " " + vm.Cmdline
	}
	c := fcConfig{
		BootSource: fcBoot{KernelImagePath: vm.path(kernel), InitrdPath: vm.path(vm.Initrd), BootArgs: args},
		// The initramfs is the boot root; the image is an ordinary disk
		// the init finds by content.
		Drives:            []fcDrive{{DriveID: "rootfs", PathOnHost: vm.path(vm.Rootfs), IsRootDevice: false, IsReadOnly: true}},
		MachineConfig:     fcMachine{VCPUCount: vm.cpus(), MemSizeMiB: vm.memory()},
		NetworkInterfaces: []fcNet{{IfaceID: "eth0", HostDevName: FirecrackerTap}},
	}
	if _, _, err := vm.disks(); err != nil {
		return fmt.Errorf("firecracker: %w", err)
	}
	if vm.Verity != "" {
		c.Drives = append(c.Drives, fcDrive{DriveID: "verity", PathOnHost: vm.path(vm.Verity), IsReadOnly: true})
	}
	// Data disks after the root disk, writable; drive ids are
	// alphanumeric (Firecracker's API).
	for i, name := range vm.DataDisks {
		c.Drives = append(c.Drives, fcDrive{DriveID: fmt.Sprintf("data%d", i), PathOnHost: vm.path(name)})
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
