// Package arch is c2vm's one table of CPU architectures: each one's name in
// every vocabulary the pipeline meets (Go and OCI, uname and libvirt, QEMU,
// Debian, ELF), and, for the architectures c2vm boots as VMs, how QEMU runs
// them and which console and kernel image they use. Every other package
// asks this one; none keeps its own map.
//
//	a, err := arch.Lookup("aarch64") // also "arm64", "arm64/v8"
//	a.GOARCH        // "arm64"
//	a.Uname         // "aarch64" (libvirt, qemu-user)
//	a.QEMU.Binary   // "qemu-system-aarch64"
//	a.Console       // "ttyAMA0"
//
// It is a leaf package (standard library only): the guest init may link it.
package arch

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// ErrUnknown is wrapped by Lookup's error for a name no row carries.
var ErrUnknown = errors.New("unknown architecture")

// Arch is one CPU architecture.
type Arch struct {
	GOARCH string // Go's and the OCI image spec's name: amd64
	Uname  string // uname -m and libvirt's <type arch>: x86_64
	// User is qemu-user's name (qemu-USER-static, binfmt entry qemu-USER).
	User   string
	Debian string      // dpkg's architecture: amd64, armhf, i386
	ELF    elf.Machine // e_machine of its binaries
	// Binfmt is the binfmt_misc magic and mask matching its ELF executables
	// and shared objects: the first 20 bytes of the ELF header (class, data,
	// version, type ET_EXEC or ET_DYN, machine), as QEMU's
	// scripts/qemu-binfmt-conf.sh and Debian's qemu-user-static define them.
	BinfmtMagic, BinfmtMask string

	// The rest is set only for VM architectures (IsVM).

	QEMU QEMU
	// Console is the kernel's serial console under QEMU's machine.
	Console string
	// KernelImage is the kernel image format its boot loaders take
	// ("bzImage" on x86, "Image" elsewhere).
	KernelImage string
	// EFI is set for the architectures c2vm writes UEFI disks for.
	EFI *EFI
}

// EFI is what a UEFI disk of the architecture needs.
type EFI struct {
	// Suffix names its EFI binaries: the removable-media boot file
	// BOOT<SUFFIX>.EFI (UEFI 2.10 section 3.5.1.1) and systemd's
	// linux<suffix>.efi.stub.
	Suffix string
	// PEMachine is its PE/COFF machine type (PE/COFF specification,
	// "Machine Types").
	PEMachine uint16
	// RootType and RootVerityType are its root and root-verity partition
	// type GUIDs (UAPI Discoverable Partitions Specification).
	RootType, RootVerityType string
	// Firmware is the UEFI firmware QEMU boots its disks with, from the
	// Debian package FirmwarePackage: a whole flash image that -bios
	// loads read-only (no NVRAM: the firmware then boots BootFile).
	Firmware, FirmwarePackage string
}

// BootFile is the UEFI removable-media boot path in the ESP.
func (e EFI) BootFile() string { return "EFI/BOOT/BOOT" + strings.ToUpper(e.Suffix) + ".EFI" }

// Stub is where Debian's systemd-boot-efi package puts the EFI stub.
func (e EFI) Stub() string { return "/usr/lib/systemd/boot/efi/linux" + e.Suffix + ".efi.stub" }

// QEMU says how qemu-system runs the architecture.
type QEMU struct {
	Binary  string   // qemu-system-x86_64
	Machine string   // -M: q35, virt (also libvirt's <type machine>)
	CPU     string   // -cpu, "" for QEMU's default
	Args    []string // -M MACHINE [-cpu CPU], ready for a command line
	// TCGCPU is -cpu under TCG when it differs from CPU: the same CPU,
	// faster to emulate ("": CPU).
	TCGCPU string
}

// IsVM reports whether c2vm builds a guest init for a and boots it.
func (a Arch) IsVM() bool { return a.QEMU.Binary != "" }

func (a Arch) String() string { return a.GOARCH }

const (
	// The ELF header prefixes: 64- or 32-bit, little-endian, version 1,
	// OS ABI and padding zero, then e_type ET_EXEC (2) and e_machine.
	elf64le = "\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00"
	elf32le = "\x7fELF\x01\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00"
	// The masks: ignore the ABI fields and the lowest e_type bit (so
	// ET_DYN, 3, matches too). x86's also let the OS ABI byte vary.
	maskX86 = "\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
	maskStd = "\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff"
)

// table holds every architecture; aliases maps other spellings to GOARCH.
var table = []Arch{
	{GOARCH: "amd64", User: "x86_64", Uname: "x86_64", Debian: "amd64", ELF: elf.EM_X86_64,
		BinfmtMagic: elf64le + "\x3e\x00", BinfmtMask: maskX86,
		QEMU:    qemu("qemu-system-x86_64", "q35", "", ""),
		Console: "ttyS0", KernelImage: "bzImage",
		EFI: &EFI{Suffix: "x64", PEMachine: 0x8664,
			RootType: "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709", RootVerityType: "2C7357ED-EBD2-46D9-AEC1-23D437EC2BF5",
			Firmware: "/usr/share/ovmf/OVMF.fd", FirmwarePackage: "ovmf"}},
	{GOARCH: "arm64", User: "aarch64", Uname: "aarch64", Debian: "arm64", ELF: elf.EM_AARCH64,
		BinfmtMagic: elf64le + "\xb7\x00", BinfmtMask: maskStd,
		// -cpu max: QEMU's virt has no default CPU that runs every
		// arm64 kernel under TCG. Under TCG with pointer authentication's
		// IMPDEF algorithm: Debian's kernel signs and checks return
		// addresses in every function, and QEMU emulates the architected
		// QARMA5 cipher slowly, the IMPDEF one "significantly faster"
		// (QEMU's docs/system/arm/cpu-features.rst). Measured here: boot to
		// the exec agent's answer 21 s → 5.6 s, an exec's VM CPU 117 → 57 ms.
		// KVM has no such property: the host's CPU signs.
		QEMU:    qemu("qemu-system-aarch64", "virt", "max", "max,pauth-impdef=on"),
		Console: "ttyAMA0", KernelImage: "Image",
		EFI: &EFI{Suffix: "aa64", PEMachine: 0xaa64,
			RootType: "B921B045-1DF0-41C3-AF44-4C6F280D3FAE", RootVerityType: "DF3300CE-D69F-4C92-978C-9BFB0F38D820",
			Firmware: "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd", FirmwarePackage: "qemu-efi-aarch64"}},
	{GOARCH: "riscv64", User: "riscv64", Uname: "riscv64", Debian: "riscv64", ELF: elf.EM_RISCV,
		BinfmtMagic: elf64le + "\xf3\x00", BinfmtMask: maskStd,
		QEMU:    qemu("qemu-system-riscv64", "virt", "", ""),
		Console: "ttyS0", KernelImage: "Image"},
	{GOARCH: "386", User: "i386", Uname: "i686", Debian: "i386", ELF: elf.EM_386,
		BinfmtMagic: elf32le + "\x03\x00", BinfmtMask: maskX86},
	{GOARCH: "arm", User: "arm", Uname: "armv7l", Debian: "armhf", ELF: elf.EM_ARM,
		BinfmtMagic: elf32le + "\x28\x00", BinfmtMask: maskStd},
	// ppc64le's mask also ignores the low bits of e_ident's padding and
	// the high byte of e_machine (qemu-binfmt-conf.sh).
	{GOARCH: "ppc64le", User: "ppc64le", Uname: "ppc64le", Debian: "ppc64el", ELF: elf.EM_PPC64,
		BinfmtMagic: elf64le + "\x15\x00",
		BinfmtMask:  "\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\x00"},
	// s390x is big-endian: e_type and e_machine are too; its mask, like
	// ppc64le's, ignores the low bits of the OS ABI version byte.
	{GOARCH: "s390x", User: "s390x", Uname: "s390x", Debian: "s390x", ELF: elf.EM_S390,
		BinfmtMagic: "\x7fELF\x02\x02\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x16",
		BinfmtMask:  "\xff\xff\xff\xff\xff\xff\xff\xfc\xff\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff"},
}

// aliases are spellings of other vocabularies that are not a row's
// GOARCH, Uname or Debian name.
var aliases = map[string]string{
	"x86-64": "amd64", "i386": "386", "i486": "386", "i586": "386",
	"armv7": "arm", "armel": "arm", "armv8": "arm64", "ppc64el": "ppc64le",
}

func qemu(bin, machine, cpu, tcgCPU string) QEMU {
	args := []string{"-M", machine}
	if cpu != "" {
		args = append(args, "-cpu", cpu)
	}
	return QEMU{Binary: bin, Machine: machine, CPU: cpu, Args: args, TCGCPU: tcgCPU}
}

// Lookup finds an architecture by any of its names (GOARCH, uname, Debian,
// an alias), case-insensitively; an OCI variant after a slash
// ("arm64/v8") is ignored.
func Lookup(name string) (Arch, error) {
	n := strings.ToLower(strings.TrimSpace(name))
	n, _, _ = strings.Cut(n, "/")
	if g, ok := aliases[n]; ok {
		n = g
	}
	for _, a := range table {
		if n == a.GOARCH || n == a.Uname || n == a.Debian || n == a.User {
			return a, nil
		}
	}
	return Arch{}, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(Names(), ", "))
}

// VM looks up an architecture c2vm can boot as a VM.
func VM(name string) (Arch, error) {
	a, err := Lookup(name)
	if err != nil {
		return Arch{}, err
	}
	if !a.IsVM() {
		return Arch{}, fmt.Errorf("architecture %s cannot be a VM (VM architectures: %s)", a.GOARCH, strings.Join(VMNames(), ", "))
	}
	return a, nil
}

// ByELF finds the architecture of an ELF machine.
func ByELF(m elf.Machine) (Arch, bool) {
	for _, a := range table {
		if a.ELF == m {
			return a, true
		}
	}
	return Arch{}, false
}

// Names lists every architecture's GOARCH, sorted.
func Names() []string { return names(func(Arch) bool { return true }) }

// VMNames lists the VM architectures' GOARCH names, sorted.
func VMNames() []string { return names(Arch.IsVM) }

func names(keep func(Arch) bool) []string {
	var out []string
	for _, a := range table {
		if keep(a) {
			out = append(out, a.GOARCH)
		}
	}
	sort.Strings(out)
	return out
}

// CheckStatic makes sure b is a binary that runs as-is in an initramfs of
// a VM of this architecture: an ELF for a's machine with no program
// interpreter (the initramfs has no dynamic loader).
func (a Arch) CheckStatic(b []byte) error {
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("not an ELF binary: %w", err)
	}
	defer f.Close()
	if f.Machine != a.ELF {
		return fmt.Errorf("built for %s, the VM is %s (%s)", f.Machine, a.GOARCH, a.ELF)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(io.LimitReader(p.Open(), 4096))
			return fmt.Errorf("dynamically linked (interpreter %s); it must be static", strings.TrimRight(string(interp), "\x00"))
		}
	}
	return nil
}
