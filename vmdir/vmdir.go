// Package vmdir is the contract of a converted VM's output directory:
// the artifacts' file names, manifest.json's schema, reading a directory
// back with every artifact checked against its sha256 and size, and the
// one vmconfig.VM built from it. convert writes through it; launch (and
// push, pull, verify) read through it, so none of them needs the
// converter.
//
//	vm, err := vmdir.Read("app.vm") // every artifact checked
//	if err != nil {
//		return err // "…/rootfs.img: sha256 mismatch (manifest.json says …, the file has …)"
//	}
//	cfg := vm.Config() // kernel, initramfs, root disk, verity, data disks, forwards
//
// A directory of several platforms holds one such directory per
// platform, <os>-<arch>[-<variant>], and a top manifest.json listing them
// (MultiManifest, ReadMulti).
//
// manifest.json carries schemaVersion (SchemaVersion). A manifest
// without one (or with 0, the Go zero value) was written before the
// field existed and is read as version 1, the same schema; any other version is refused
// (ErrUnsupported), never guessed at.
//
// The package stays light: the standard library, vmconfig and the OCI
// types, no image, rootfs or kernel code.
package vmdir

import (
	"fmt"
	"regexp"
)

// The artifacts' names in a VM directory.
const (
	ManifestFile = "manifest.json"
	Kernel       = "kernel"
	Initramfs    = "initramfs.img"
	Rootfs       = "rootfs.img"
	Verity       = "rootfs.verity"          // dm-verity hash tree over Rootfs (--verity)
	Spec         = "config.json"            // the OCI runtime spec
	BootPlan     = "boot.json"              // the boot plan, also inside Initramfs
	Vmlinux      = "vmlinux"                // uncompressed kernel, for Firecracker on x86_64
	DiskRaw      = "disk.img"               // UEFI-bootable disk (--disk raw)
	DiskQcow2    = "disk.qcow2"             // the same as qcow2 (--disk qcow2)
	DiskVMDK     = "disk.vmdk"              // for VMware and VirtualBox (--disk vmdk)
	DiskVHDX     = "disk.vhdx"              // for Hyper-V (--disk vhdx)
	SBOM         = "sbom.spdx.json"         // SPDX 2.3 JSON
	Provenance   = "provenance.intoto.json" // in-toto Statement v1, SLSA provenance v1
	// SignedProvenance is the provenance as a DSSE envelope (--sign-key),
	// written instead of Provenance.
	SignedProvenance = "provenance.dsse.json"

	// The hypervisor configs (vmconfig's targets' names).
	QEMUScript     = "qemu.sh"
	Libvirt        = "libvirt.xml"
	XL             = "xl.cfg"
	Firecracker    = "firecracker.json"
	QEMUDiskScript = "qemu-disk.sh"
	LibvirtDisk    = "libvirt-disk.xml"
)

// BuildKitAttestation is the file of the n-th (from 0) in-toto statement
// BuildKit attached to the image, kept beside c2vm's SBOM and provenance.
func BuildKitAttestation(n int) string { return fmt.Sprintf("buildkit-%d.intoto.json", n+1) }

// DataDisk is the file of the n-th volume's data disk (from 0).
func DataDisk(n int) string { return fmt.Sprintf("data-%d.img", n) }

var dataDiskPattern = regexp.MustCompile(`^data-[0-9]+\.img$`)

// IsDataDisk reports whether name is a data disk's file.
func IsDataDisk(name string) bool { return dataDiskPattern.MatchString(name) }

// Writable reports whether an artifact is the VM's writable state — a
// data disk, or the disk image, which the VM boots read-write — so its
// bytes change once it has run and Read checks only that it is there.
func Writable(name string) bool {
	switch name {
	case DiskRaw, DiskQcow2, DiskVMDK, DiskVHDX:
		return true
	}
	return IsDataDisk(name)
}
