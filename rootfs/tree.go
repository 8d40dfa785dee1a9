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

// Inode is one file object. Several names (hardlinks) may share one Inode.
type Inode struct {
	Type Type
	// Mode holds the permission bits plus setuid (04000), setgid (02000)
	// and sticky (01000): the low 12 bits of st_mode.
	Mode     uint32
	UID, GID int
	ModTime  time.Time
	// Xattrs maps a full attribute name ("security.capability",
	// "user.foo") to its raw value.
	Xattrs map[string]string
	// Linkname is a symlink's target, as stored.
	Linkname string
	// Devmajor and Devminor are a device node's numbers.
	Devmajor, Devminor uint32
	// Size is a regular file's length in bytes.
	Size int64
	// Nlink is the number of names in the tree that refer to this inode
	// (for directories: 2 + number of subdirectories).
	Nlink uint32
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
	Path  string
	Inode *Inode
	// LinkTarget, when set, is the Path of an earlier entry (in Walk
	// order) with the same Inode: a writer emits this entry as a hardlink.
	LinkTarget string
}

// WalkFunc is called for every entry of a tree.
type WalkFunc func(e Entry) error
