// Package erofs writes a rootfs.Tree as an EROFS image, the read-only
// format the Linux kernel mounts (fs/erofs) and erofs-utils' fsck.erofs
// checks.
//
// It keeps everything the tree says: owners (32-bit uids and gids),
// modes with setuid/setgid/sticky, mtimes to the nanosecond, hardlinks
// (one inode, right nlink), devices, fifos, sockets, symlinks and xattrs
// in the user., trusted., security. and POSIX ACL namespaces. File data
// is lz4 compressed (or stored as is) in a fixed order, so the same tree
// and options give the same bytes; the volume UUID is a hash of the
// content.
//
//	f, _ := os.Create("rootfs.img")
//	err := erofs.Write(ctx, tree, f, erofs.Options{})
//
// The layout follows the kernel's fs/erofs/erofs_fs.h and
// Documentation/filesystems/erofs.rst, and what Linux 6.1 (Debian 12)
// reads: 4 KiB blocks, the superblock at 1024, then every inode with its
// xattrs and tail data in the metadata area, then the data blocks. Inodes
// are compact (32 bytes) where uid, gid, nlink, size and mtime fit, as
// mkfs.erofs decides (lib/inode.c, erofs_should_use_inode_extended), and
// extended (64 bytes) otherwise.
//
// Why our own writer: github.com/erofs/go-erofs (vendored by containerd's
// erofs snapshotter, which itself shells out to mkfs.erofs) writes images
// at 622ddde (2026-06: mkfs.go, writer.go), but stores data
// uncompressed only and gives every path its own inode (SetNlink sets a
// count, no two names share a nid), so hardlinks are not kept;
// github.com/dpeckett/erofs (from gVisor) only reads.
package erofs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/c2vm/c2vm/rootfs"
)

// Compression names how regular files' data is stored.
type Compression int

// Compressions. The zero value, LZ4HC, is the default: the kernel
// decompresses lz4hc and lz4 output with the same code at the same speed,
// so the slower, tighter compressor costs only build time and gives a
// smaller image to read at boot (mkfs.erofs users pick -zlz4hc for system
// images for the same reason).
const (
	LZ4HC Compression = iota
	LZ4
	None
)

var compressionNames = []string{LZ4HC: "lz4hc", LZ4: "lz4", None: "none"}

func (c Compression) String() string {
	if c >= 0 && int(c) < len(compressionNames) {
		return compressionNames[c]
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ParseCompression turns "lz4hc", "lz4" or "none" into a Compression.
func ParseCompression(s string) (Compression, error) {
	for i, n := range compressionNames {
		if n == s {
			return Compression(i), nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrCompression, s)
}

// Errors a caller may test.
var (
	ErrCompression  = errors.New("unknown erofs compression")
	ErrPclusterSize = errors.New("erofs pcluster size must be a multiple of 4 KiB from 8 KiB to 1 MiB")
	ErrShortFile    = rootfs.ErrShortFile
	ErrXattr        = errors.New("xattr too large for erofs")
)

// Options control the image. The zero value is the default.
type Options struct {
	Compression Compression
	// PclusterSize is how many bytes of a file are compressed together;
	// 0 means 64 KiB. A reader decompresses a whole pcluster to read any
	// byte of it: bigger compresses better and reads more at random.
	PclusterSize int
	// ModTime is the build time in the superblock (SOURCE_DATE_EPOCH),
	// which compact inodes take as their mtime; zero means the Unix
	// epoch. Each inode keeps its own mtime.
	ModTime time.Time
	// Workers is the number of compressing goroutines; 0 means GOMAXPROCS.
	Workers int
}

// Format is the EROFS rootfs.Writer.
type Format struct{ Options }

var _ rootfs.Writer = Format{}

// Write writes t into f with the format's options.
func (f Format) Write(ctx context.Context, t *rootfs.Tree, file *os.File) error {
	return Write(ctx, t, file, f.Options)
}

const defaultPcluster = 64 << 10

func (o Options) normalize() (Options, error) {
	if o.PclusterSize == 0 {
		o.PclusterSize = defaultPcluster
	}
	if o.PclusterSize < 2*blockSize || o.PclusterSize > 1<<20 || o.PclusterSize%blockSize != 0 {
		return o, fmt.Errorf("%w: %d", ErrPclusterSize, o.PclusterSize)
	}
	if o.Compression < LZ4HC || o.Compression > None {
		return o, fmt.Errorf("%w: %d", ErrCompression, int(o.Compression))
	}
	if o.ModTime.IsZero() {
		o.ModTime = time.Unix(0, 0)
	}
	return o, nil
}

// Write writes t as an EROFS image into f, which should be empty.
func Write(ctx context.Context, t *rootfs.Tree, f *os.File, o Options) error {
	o, err := o.normalize()
	if err != nil {
		return err
	}
	im, err := newImage(t, o)
	if err != nil {
		return fmt.Errorf("writing erofs: %w", err)
	}
	if err := im.write(ctx, f); err != nil {
		return fmt.Errorf("writing erofs: %w", err)
	}
	return nil
}
