package vmconfig

import (
	"github.com/c2vm/c2vm/arch"

	"encoding/xml"
	"fmt"
	"io"
)

// Libvirt writes libvirt.xml: a domain booting the kernel directly
// (https://libvirt.org/formatdomain.html#direct-kernel-boot), type "qemu"
// (TCG; change to "kvm" where KVM works), the root disk read-only virtio.
type Libvirt struct{}

// Name implements Target.
func (Libvirt) Name() string { return "libvirt.xml" }

type domain struct {
	XMLName xml.Name `xml:"domain"`
	Type    string   `xml:"type,attr"`
	Name    string   `xml:"name"`
	Memory  struct {
		Unit  string `xml:"unit,attr"`
		Value int    `xml:",chardata"`
	} `xml:"memory"`
	VCPU       int       `xml:"vcpu"`
	OS         domainOS  `xml:"os"`
	Features   *features `xml:"features,omitempty"`
	CPU        *cpu      `xml:"cpu,omitempty"`
	OnPoweroff string    `xml:"on_poweroff"`
	OnReboot   string    `xml:"on_reboot"`
	OnCrash    string    `xml:"on_crash"`
	Devices    devices   `xml:"devices"`
}

type domainOS struct {
	Type struct {
		Arch    string `xml:"arch,attr"`
		Machine string `xml:"machine,attr"`
		Value   string `xml:",chardata"`
	} `xml:"type"`
	Kernel  string `xml:"kernel"`
	Initrd  string `xml:"initrd"`
	Cmdline string `xml:"cmdline"`
}

type features struct {
	ACPI *struct{} `xml:"acpi"`
}

type cpu struct {
	Mode  string `xml:"mode,attr,omitempty"`
	Model string `xml:"model,omitempty"`
}

type devices struct {
	Disk struct {
		Type   string `xml:"type,attr"`
		Device string `xml:"device,attr"`
		Driver struct {
			Name string `xml:"name,attr"`
			Type string `xml:"type,attr"`
		} `xml:"driver"`
		Source struct {
			File string `xml:"file,attr"`
		} `xml:"source"`
		Target struct {
			Dev string `xml:"dev,attr"`
			Bus string `xml:"bus,attr"`
		} `xml:"target"`
		Readonly struct{} `xml:"readonly"`
	} `xml:"disk"`
	Serial struct {
		Type   string `xml:"type,attr"`
		Target struct {
			Port int `xml:"port,attr"`
		} `xml:"target"`
	} `xml:"serial"`
	Console struct {
		Type   string `xml:"type,attr"`
		Target struct {
			Type string `xml:"type,attr"`
			Port int    `xml:"port,attr"`
		} `xml:"target"`
	} `xml:"console"`
}

// Write implements Target.
func (Libvirt) Write(w io.Writer, vm VM) error {
	d := domain{Type: "qemu", Name: vm.Name, VCPU: vm.cpus(), OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy"}
	d.Memory.Unit, d.Memory.Value = "MiB", vm.memory()
	a, err := arch.VM(vm.Arch)
	if err != nil {
		return fmt.Errorf("libvirt: %w", err)
	}
	d.OS.Type.Arch, d.OS.Type.Machine = a.Uname, a.QEMU.Machine
	switch {
	case a.GOARCH == "amd64":
		d.Features = &features{ACPI: &struct{}{}}
	case a.QEMU.CPU == "max":
		// "maximum" is QEMU's -cpu max, which TCG can run. No <acpi/>
		// on arm64: libvirt allows ACPI on aarch64 only with UEFI, and a
		// direct kernel boot has none (the kernel uses the device tree).
		d.CPU = &cpu{Mode: "maximum"}
	}
	d.OS.Type.Value = "hvm"
	d.OS.Kernel, d.OS.Initrd = vm.path(vm.Kernel), vm.path(vm.Initrd)
	d.OS.Cmdline = "console=" + a.Console + " panic=-1"
	if vm.Cmdline != "" {
		d.OS.Cmdline += " " + vm.Cmdline
	}
	disk := &d.Devices.Disk
	disk.Type, disk.Device = "file", "disk"
	disk.Driver.Name, disk.Driver.Type = "qemu", "raw"
	disk.Source.File = vm.path(vm.Rootfs)
	disk.Target.Dev, disk.Target.Bus = "vda", "virtio"
	d.Devices.Serial.Type = "pty"
	d.Devices.Console.Type = "pty"
	d.Devices.Console.Target.Type = "serial"
	b, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
