// Package rootfs flattens image layers into one in-memory tree of metadata
// and writes that tree as a filesystem image.
//
// The tree holds metadata only: a regular file's contents stay where the
// layer put them (a spool of the decompressed layer, or the blob itself) and
// are streamed from there when a writer asks for them.
//
//	t, err := rootfs.Flatten(ctx, layers, rootfs.FlattenOptions{SpoolDir: dir})
//	defer t.Close()
//	err = t.Walk(func(e rootfs.Entry) error { ... })
package rootfs

import (
	"io"
	"time"
)

// Type is the kind of an inode.
type Type uint8

// Inode types, as a tar header or a stat(2) would name them.
const (
	TypeRegular Type = iota
	TypeDir
	TypeSymlink
	TypeCharDev
	TypeBlockDev
	TypeFIFO
	TypeSocket
)

// statTypes are each type's S_IFMT bits of st_mode (inode(7)) and its
// directory entry type (include/linux/fs_types.h: FT_REG_FILE...), which
// file systems store as the kernel defines them.
var statTypes = [...]struct {
	ifmt uint32
	ft   uint8
}{
	TypeRegular: {0o100000, 1}, TypeDir: {0o040000, 2}, TypeCharDev: {0o020000, 3},
	TypeBlockDev: {0o060000, 4}, TypeFIFO: {0o010000, 5}, TypeSocket: {0o140000, 6},
	TypeSymlink: {0o120000, 7},
}

// Valid reports whether t is one of the types above.
func (t Type) Valid() bool { return int(t) < len(statTypes) }

// IFMT is t's S_IFMT bits of st_mode; 0 for an invalid type.
func (t Type) IFMT() uint32 {
	if !t.Valid() {
		return 0
	}
	return statTypes[t].ifmt
}

// FileType is t's directory entry type (FT_*); 0 (FT_UNKNOWN) for an
// invalid type.
func (t Type) FileType() uint8 {
	if !t.Valid() {
		return 0
	}
	return statTypes[t].ft
}

// StatMode is the inode's st_mode: its type's bits and the low 12 of Mode.
func (i *Inode) StatMode() uint32 { return i.Type.IFMT() | uint32(i.Mode&0o7777) }

// Rdev is a device node's number packed as the kernel's new_encode_dev
// (include/linux/kdev_t.h), the form erofs and squashfs store and undo
// with new_decode_dev.
func (i *Inode) Rdev() uint32 {
	return i.Devminor&0xff | i.Devmajor<<8&0xfff00 | (i.Devminor&^0xff)<<12
}

// Inode is one file object. Several names (hardlinks) may share one Inode.
// A tree holds one per file, so the fields are sized and ordered to fit
// 96 bytes (a million empty files hold a million of them).
type Inode struct {
	Type Type
	// Mode holds the permission bits plus setuid (04000), setgid (02000)
	// and sticky (01000): the low 12 bits of st_mode.
	Mode uint16
	// UID and GID are 32 bits, as on Linux (Flatten refuses larger).
	UID, GID uint32
	// Nlink is the number of names in the tree that refer to this inode
	// (for directories: 2 + number of subdirectories).
	Nlink uint32
	// Devmajor and Devminor are a device node's numbers.
	Devmajor, Devminor uint32
	ModTime            time.Time
	// Size is a regular file's length in bytes.
	Size int64
	// Linkname is a symlink's target, as stored.
	Linkname string
	// Xattrs maps a full attribute name ("security.capability",
	// "user.foo") to its raw value.
	Xattrs map[string]string
	// Content opens a regular file's contents (Size bytes). Nil for
	// other types and for empty files.
	Content Content
}

// Content gives a regular file's bytes. Implementations read from a spool
// file or a blob; callers may open it more than once and concurrently.
type Content interface {
	Open() (io.ReadCloser, error)
}

// Entry is one name in the tree, as Walk reports it.
type Entry struct {
	// Path is slash-separated, relative to the root, without a leading
	// slash; the root itself is ".".
	Path string
	// Name is Path's last element ("." for the root): a string the tree
	// holds, so a writer may keep it without a copy of its own.
	Name  string
	Inode *Inode
	// LinkTarget, when set, is the Path of an earlier entry (in Walk
	// order) with the same Inode: a writer emits this entry as a hardlink.
	LinkTarget string
}

// WalkFunc is called for every entry of a tree.
type WalkFunc func(e Entry) error
