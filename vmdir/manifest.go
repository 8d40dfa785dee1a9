package vmdir

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// SchemaVersion is the version of manifest.json's schema this package
// writes and reads. A manifest without schemaVersion is version 1.
const SchemaVersion = 1

// Manifest is manifest.json: what was converted, with what, into what.
type Manifest struct {
	SchemaVersion int              `json:"schemaVersion"`
	C2VMVersion   string           `json:"c2vmVersion"`
	Image         ImageInfo        `json:"image"`
	Platform      ocispec.Platform `json:"platform"`
	VMArch        string           `json:"vmArch,omitempty"`
	Memory        int              `json:"memory,omitempty"` // MiB, as given to --memory
	CPUs          int              `json:"cpus,omitempty"`
	StopTimeout   int              `json:"stopTimeout,omitempty"` // seconds the init gives the container to stop
	Rootfs        string           `json:"rootfs"`
	Kernel        *KernelInfo      `json:"kernel,omitempty"`
	// Exposed are the image's EXPOSEd ports; Forwards the ports the
	// configs publish (c2vm run starts from them).
	Exposed  []plan.Port    `json:"exposed,omitempty"`
	Forwards []plan.Forward `json:"forwards,omitempty"`
	// DataDisks are the data disks' files, in the order the hypervisor
	// configs attach them after the root disk; Volumes says which volume
	// each one serves.
	DataDisks []string     `json:"dataDisks,omitempty"`
	Volumes   []VolumeInfo `json:"volumes,omitempty"`
	// Verity is the root disk's dm-verity hash tree, when --verity made one.
	Verity *VerityInfo `json:"verity,omitempty"`
	// Disk is the UEFI-bootable disk image (--disk), when written.
	Disk *DiskInfo `json:"disk,omitempty"`
	// Artifacts maps each file in the directory (but manifest.json) to its
	// digest and size.
	Artifacts map[string]Artifact `json:"artifacts"`
	// SBOM is the SPDX SBOM's file (SBOM), listed in Artifacts too.
	SBOM string `json:"sbom,omitempty"`
	// Provenance is the provenance's file (Provenance, or
	// SignedProvenance with --sign-key). It is written after
	// manifest.json and covers it, so Artifacts cannot list it.
	Provenance string `json:"provenance,omitempty"`
}

// ImageInfo identifies the source image.
type ImageInfo struct {
	Ref            string `json:"ref"`
	ManifestDigest string `json:"manifestDigest"`
	ConfigDigest   string `json:"configDigest"`
}

// KernelInfo identifies the kernel in the output.
type KernelInfo struct {
	// Source is what --kernel named, or "image" for the image's own.
	Source  string   `json:"source,omitempty"`
	Version string   `json:"version"`
	Arch    string   `json:"arch"`
	Format  string   `json:"format"`
	Modules []string `json:"modules,omitempty"`
	// Shares are the host-share filesystems the VM can mount (c2vm run
	// -v): "virtiofs", "9p", both or none.
	Shares []string `json:"shares,omitempty"`
	// Debian is the Debian package the kernel came from, when c2vm
	// fetched it (--kernel debian:SUITE=VERSION pins it again).
	Debian *DebianSource `json:"debian,omitempty"`
	// Image is the container image the kernel came from (--kernel oci:...).
	Image *ImageInfo `json:"image,omitempty"`
}

// DebianSource is the Debian package a kernel or EFI stub came from.
type DebianSource struct {
	Mirror  string `json:"mirror"`
	Suite   string `json:"suite"`
	Package string `json:"package"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"` // of the .deb
	// InRelease and Packages are the sha256 of the signed InRelease and
	// the Packages.xz the .deb's digest was checked against.
	InRelease string `json:"inRelease,omitempty"`
	Packages  string `json:"packages,omitempty"`
}

// VolumeInfo is one data disk.
type VolumeInfo struct {
	Path  string `json:"path"`  // where the guest mounts it
	Disk  string `json:"disk"`  // its file in the output directory
	Label string `json:"label"` // its ext4 label, which the guest finds it by
	// Reused is set when the disk is a copy of a --data-disk, not a
	// fresh one seeded from the image.
	Reused bool `json:"reused,omitempty"`
}

// VerityInfo is the root disk's dm-verity hash tree: what `veritysetup
// verify rootfs.img rootfs.verity ROOTHASH` checks, and what the boot
// plan gives the init.
type VerityInfo struct {
	File       string `json:"file"`
	RootHash   string `json:"rootHash"` // hex
	Salt       string `json:"salt"`     // hex
	DataBlocks int64  `json:"dataBlocks"`
	BlockSize  int    `json:"blockSize"`
	HashOffset int64  `json:"hashOffset"` // bytes: the tree's start in File
	Algorithm  string `json:"algorithm"`
}

// DiskInfo is the disk image (--disk): its file, format and partitions.
type DiskInfo struct {
	File       string      `json:"file"`
	Format     string      `json:"format"` // raw, qcow2, vmdk or vhdx
	Size       int64       `json:"size"`
	GUID       string      `json:"guid"`
	BootFile   string      `json:"bootFile"` // the UKI's path in the ESP
	Partitions []Partition `json:"partitions"`
	// EFIStub is the systemd EFI stub the UKI is built on.
	EFIStub *EFIStub `json:"efiStub,omitempty"`
	// SecureBoot is the SHA-256 fingerprint (hex) of the certificate the
	// UKI is signed for (--secure-boot-cert); "" when it is not signed.
	SecureBoot string `json:"secureBoot,omitempty"`
}

// EFIStub is where the disk's EFI stub came from.
type EFIStub struct {
	// Source is the stub's file, or debian:SUITE=VERSION when c2vm
	// fetched Debian's systemd-boot-efi (--efi-stub takes it back).
	Source string        `json:"source"`
	SHA256 string        `json:"sha256"` // of the stub
	Debian *DebianSource `json:"debian,omitempty"`
}

// Partition is one partition of the disk image.
type Partition struct {
	Name   string `json:"name"`
	Type   string `json:"type"` // type GUID
	GUID   string `json:"guid"`
	Offset int64  `json:"offset"` // bytes from the disk's start
	Size   int64  `json:"size"`
}

// Artifact is one output file's identity.
type Artifact struct {
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// KernelArgs are the c2vm.* kernel arguments every boot of the output
// carries: for a --verity output, the root hash (plan.ArgRootHash), on
// the UKI's command line and the direct-boot configs' alike, and on
// c2vm run's. "" for none.
func (m *Manifest) KernelArgs() string {
	if m.Verity == nil {
		return ""
	}
	return plan.Args{RootHash: m.Verity.RootHash}.String()
}

// Name is the VM's domain name in the configs: c2vm- and the first 12
// hex digits of the image's manifest digest.
func (m *Manifest) Name() string {
	d := m.Image.ManifestDigest
	d = d[strings.IndexByte(d, ':')+1:]
	if len(d) > 12 {
		d = d[:12]
	}
	return "c2vm-" + d
}

// DigestFile gives the sha256 and size of the file p.
func DigestFile(p string) (Artifact, error) {
	f, err := os.Open(p)
	if err != nil {
		return Artifact{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return Artifact{}, fmt.Errorf("hashing %s: %w", p, err)
	}
	return Artifact{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// WriteJSON writes a JSON file of the directory as c2vm writes them all
// (manifest.json, config.json, boot.json): indented, map keys sorted (by
// encoding/json), a final newline.
func WriteJSON(p string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(p, append(b, '\n'), 0o644)
}
