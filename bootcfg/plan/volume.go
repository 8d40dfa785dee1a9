package plan

import (
	"bytes"
	"fmt"
	"strings"
)

func init() {
	register(
		func() Action { return &MountVolume{} },
		func() Action { return &Unmount{} },
	)
}

// VolumeLabelPrefix starts the ext4 label of every data disk c2vm writes
// ("c2vm-vol-0", ...): the guest finds a volume's disk by its label, and
// never takes one for the root disk.
const VolumeLabelPrefix = "c2vm-vol-"

// VolumeLabel is the label of the data disk of the image's n-th volume
// (in sorted path order); at most 16 bytes for n < 10^7.
func VolumeLabel(n int) string { return fmt.Sprintf("%s%d", VolumeLabelPrefix, n) }

// ext4 superblock (Documentation/filesystems/ext4/super.rst): it starts
// at byte 1024; s_magic 0xEF53 at 0x38, s_volume_name (16 bytes,
// NUL-padded) at 0x78.
const (
	ext4SuperBlock = 1024
	ext4Magic      = ext4SuperBlock + 0x38
	ext4Label      = ext4SuperBlock + 0x78
	// HeadSize is how much of a disk Ext4Label needs.
	HeadSize = 2048
)

// Ext4Label returns the volume label of the ext4 filesystem whose first
// bytes are head, and whether head holds one.
func Ext4Label(head []byte) (string, bool) {
	if len(head) < ext4Label+16 || head[ext4Magic] != 0x53 || head[ext4Magic+1] != 0xef {
		return "", false
	}
	l := head[ext4Label : ext4Label+16]
	if i := bytes.IndexByte(l, 0); i >= 0 {
		l = l[:i]
	}
	return string(l), true
}

// IsDataDisk reports whether head is the start of one of c2vm's data
// disks, which a root disk search must pass over.
func IsDataDisk(head []byte) bool {
	l, ok := Ext4Label(head)
	return ok && strings.HasPrefix(l, VolumeLabelPrefix)
}

// MountVolume waits up to WaitSeconds for the block device holding the
// ext4 filesystem labelled Label (a data disk, found by content whatever
// its device name) and mounts it read-write on Path in the container's
// root, creating the directory: a VOLUME, as Docker mounts one (no nosuid,
// nodev or noexec). It runs after the switch to the container's root.
type MountVolume struct {
	Label       string `json:"label"`
	Path        string `json:"path"`
	WaitSeconds int    `json:"waitSeconds"`
}

func (*MountVolume) Op() string { return "volume" }
func (m *MountVolume) String() string {
	return fmt.Sprintf("mount the data disk labelled %s (waiting up to %ds) on %s", m.Label, m.WaitSeconds, m.Path)
}

// Unmount syncs and unmounts Path after the container has exited, so a
// data disk is clean after a graceful stop; when the filesystem is still
// busy (a process left running) it is remounted read-only instead.
type Unmount struct {
	Path string `json:"path"`
}

func (*Unmount) Op() string       { return "unmount" }
func (u *Unmount) String() string { return "sync and unmount " + u.Path }
