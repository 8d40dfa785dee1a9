// Package plan holds the boot plan: the ordered, printable steps the guest
// init executes (boot.json). It is a leaf package — standard library,
// x/sys and runtime-spec only — because the init links it into every VM.
package plan

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Version is the boot.json format version this package reads and writes.
const Version = 1

// Plan is boot.json.
type Plan struct {
	Version int `json:"version"`
	// Modules are kernel module paths inside the initramfs
	// (e.g. "lib/modules/6.1.0-28-cloud-amd64/kernel/fs/overlayfs/overlay.ko"),
	// in load order (dependencies first).
	Modules []string `json:"modules,omitempty"`
	// Root says how to find and mount the root filesystem image.
	Root Root `json:"root"`
	// Binfmt entries are registered with binfmt_misc before the process starts.
	Binfmt []Binfmt `json:"binfmt,omitempty"`
	// BinfmtD lists paths in the container root of systemd-binfmt style
	// files (/usr/lib/binfmt.d/*.conf, /etc/binfmt.d/*.conf) to register at boot.
	BinfmtD []string `json:"binfmtD,omitempty"`
	// Spec is the OCI runtime spec (config.json); its Process, Hostname and
	// Mounts are what the init applies.
	Spec *specs.Spec `json:"spec"`
}

// Root describes the root disk.
type Root struct {
	// FSType is the filesystem of rootfs.img: "ext4", "squashfs" or "erofs".
	FSType string `json:"fstype"`
	// WaitSeconds bounds how long the init waits for the disk to appear.
	WaitSeconds int `json:"waitSeconds"`
}

// Binfmt is one binfmt_misc registration (see the kernel's
// Documentation/admin-guide/binfmt-misc.rst): ":name:type:offset:magic:mask:interpreter:flags".
type Binfmt struct {
	Name string `json:"name"`
	// Type is "M" (magic) or "E" (extension).
	Type   string `json:"type"`
	Offset int    `json:"offset,omitempty"`
	// Magic and Mask are raw bytes (JSON: base64).
	Magic       []byte `json:"magic"`
	Mask        []byte `json:"mask,omitempty"`
	Interpreter string `json:"interpreter"`
	Flags       string `json:"flags,omitempty"`
}

// Path is where the boot plan lives in the initramfs.
const Path = "/c2vm/boot.json"
