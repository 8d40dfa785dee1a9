package vmconfig

import (
	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/plan"

	"encoding/xml"
	"fmt"
	"io"
)

// Libvirt writes libvirt.xml: a domain booting the kernel directly
// (https://libvirt.org/formatdomain.html#direct-kernel-boot), type "qemu"
// (TCG; change to "kvm" where KVM works), the root disk read-only virtio,
// the data disks writable after it, and the NIC on QEMU's user-mode
// networking with the published ports (see libvirtNetComment).
type Libvirt struct{}

// Name implements Target.
func (Libvirt) Name() string { return "libvirt.xml" }

type domain struct {
	XMLName xml.Name `xml:"domain"`
	Type    string   `xml:"type,attr"`
	// QEMUNS declares the qemu: prefix of <qemu:commandline>
	// (https://libvirt.org/drvqemu.html#pass-through-of-arbitrary-qemu-commands).
	QEMUNS string `xml:"xmlns:qemu,attr,omitempty"`
	Name   string `xml:"name"`
	Memory struct {
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
	QEMU       *qemuCommandline
}

type disk struct {
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
	Readonly *struct{} `xml:"readonly"`
}

// qemuNS is libvirt's namespace for QEMU pass-through.
const qemuNS = "http://libvirt.org/schemas/domain/qemu/1.0"

type qemuCommandline struct {
	XMLName xml.Name  `xml:"qemu:commandline"`
	Comment string    `xml:",comment"`
	Args    []qemuArg `xml:"qemu:arg"`
}

type qemuArg struct {
	Value string `xml:"value,attr"`
}

// The NIC's PCI address on the root bus: libvirt places its own devices
// and PCIe root ports from slot 1 up, and a device without an address
// collides with them; slot 0x10 is free on q35 and on virt.
const libvirtNICAddr = "bus=pcie.0,addr=0x10"

// libvirtNetComment says in the file which network form is used, and why.
const libvirtNetComment = ` Network: QEMU user mode (guest 10.0.2.15, host 10.0.2.2), given to QEMU
     directly because libvirt 9.0 (Debian 12) has no port forwarding for a
     user interface: its passt backend, which newer libvirt pairs with
     <portForward>, is rejected there. Each hostfwd publishes a port
     (host address:port-:guest port); the virtio-net-pci device sits at a
     fixed free address on pcie.0, where libvirt's root ports are not. `

func libvirtNet(fs []plan.Forward) (*qemuCommandline, error) {
	id := "c2vm-" + netdevID
	nd, err := netdev(id, fs)
	if err != nil {
		return nil, err
	}
	q := &qemuCommandline{Comment: libvirtNetComment}
	for _, a := range []string{"-netdev", nd, "-device", netDevice + ",netdev=" + id + "," + libvirtNICAddr} {
		q.Args = append(q.Args, qemuArg{Value: a})
	}
	return q, nil
}

func newDisk(file, dev string, readonly bool) disk {
	d := disk{Type: "file", Device: "disk"}
	d.Driver.Name, d.Driver.Type = "qemu", "raw"
	d.Source.File = file
	d.Target.Dev, d.Target.Bus = dev, "virtio"
	if readonly {
		d.Readonly = &struct{}{}
	}
	return d
}

type domainOS struct {
	Type struct {
		Arch    string `xml:"arch,attr"`
		Machine string `xml:"machine,attr"`
		Value   string `xml:",chardata"`
	} `xml:"type"`
	// Firmware is "efi" for a disk booted by UEFI firmware (libvirt-disk.xml).
	Firmware string      `xml:"firmware,attr,omitempty"`
	Features *fwFeatures `xml:"firmware,omitempty"`
	Kernel   string      `xml:"kernel,omitempty"`
	Initrd   string      `xml:"initrd,omitempty"`
	Cmdline  string      `xml:"cmdline,omitempty"`
}

type features struct {
	ACPI *struct{} `xml:"acpi"`
	SMM  *smm      `xml:"smm"`
}

// smm is <features><smm state="on"/>, which Secure Boot firmware needs
// on q35.
type smm struct {
	State string `xml:"state,attr"`
}

type cpu struct {
	Mode  string `xml:"mode,attr,omitempty"`
	Model string `xml:"model,omitempty"`
}

type devices struct {
	Disks  []disk `xml:"disk"`
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
	Channel *channel `xml:"channel"`
}

// Write implements Target.
func (Libvirt) Write(w io.Writer, vm VM) error {
	d, err := libvirtDomain(vm)
	if err != nil {
		return err
	}
	return writeDomain(w, d)
}

// libvirtDomain is libvirt.xml's domain; libvirt-disk.xml changes its
// boot and disks.
func libvirtDomain(vm VM) (*domain, error) {
	d := &domain{Type: "qemu", Name: vm.Name, VCPU: vm.cpus(), OnPoweroff: "destroy", OnReboot: "destroy", OnCrash: "destroy"}
	d.Memory.Unit, d.Memory.Value = "MiB", vm.memory()
	a, err := arch.VM(vm.Arch)
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
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
	d.OS.Cmdline = KernelCmdline(a.Console, vm.Cmdline)
	disks, readOnly, err := vm.disks()
	if err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	for i, name := range disks {
		d.Devices.Disks = append(d.Devices.Disks, newDisk(vm.path(name), diskDev("vd", i), i < readOnly))
	}
	if d.QEMU, err = libvirtNet(vm.Forwards); err != nil {
		return nil, fmt.Errorf("libvirt: %w", err)
	}
	d.QEMUNS = qemuNS
	d.Devices.Serial.Type = "pty"
	d.Devices.Console.Type = "pty"
	d.Devices.Console.Target.Type = "serial"
	d.Devices.Channel = agentChannel()
	return d, nil
}

func writeDomain(w io.Writer, d *domain) error {
	b, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
