// Package squashfs writes a rootfs.Tree as a squashfs 4.0 image, the
// format the Linux kernel mounts read-only (fs/squashfs) and unsquashfs
// reads.
//
// It keeps everything the tree says: owners, modes with setuid/setgid/
// sticky, mtimes, hardlinks (one inode, right nlink), devices, fifos,
// sockets, symlinks and xattrs. File data is compressed in parallel with
// bounded memory and written in a fixed order, so the same tree and
// options give the same bytes.
//
//	f, _ := os.Create("rootfs.img")
//	err := squashfs.Write(ctx, tree, f, squashfs.Options{})
//
// The on-disk layout follows the kernel's fs/squashfs/squashfs_fs.h and
// squashfs-tools-ng's docs/format.adoc: superblock, data blocks and
// fragment blocks, inode table, directory table, fragment table, id table,
// xattr tables, padding to 4 KiB.
package squashfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/c2vm/c2vm/rootfs"
)

// Compression names a block compressor.
type Compression int

// Compressors. The zero value, Zstd, is the default.
const (
	Zstd Compression = iota
	Gzip
	XZ
)

func (c Compression) String() string {
	switch c {
	case Zstd:
		return "zstd"
	case Gzip:
		return "gzip"
	case XZ:
		return "xz"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// ParseCompression turns "zstd", "gzip" or "xz" into a Compression.
func ParseCompression(s string) (Compression, error) {
	for _, c := range []Compression{Zstd, Gzip, XZ} {
		if c.String() == s {
			return c, nil
		}
	}
	return 0, fmt.Errorf("%w: %q", ErrCompression, s)
}

// Errors a caller may test.
var (
	ErrCompression = errors.New("unknown squashfs compression")
	ErrBlockSize   = errors.New("squashfs block size must be a power of two from 4 KiB to 1 MiB")
	ErrShortFile   = rootfs.ErrShortFile
)

// Options control the image. The zero value is the default.
type Options struct {
	Compression Compression
	// BlockSize is the data block size; 0 means 128 KiB.
	BlockSize int
	// ModTime is the superblock's time (SOURCE_DATE_EPOCH); zero means
	// the Unix epoch.
	ModTime time.Time
	// Workers is the number of compressing goroutines; 0 means GOMAXPROCS.
	Workers int
}

// Format is the squashfs rootfs.Writer.
type Format struct{ Options }

var _ rootfs.Writer = Format{}

// Write writes t into f with the format's options.
func (f Format) Write(ctx context.Context, t *rootfs.Tree, file *os.File) error {
	return Write(ctx, t, file, f.Options)
}

const defaultBlockSize = 128 << 10

func (o Options) normalize() (Options, error) {
	if o.BlockSize == 0 {
		o.BlockSize = defaultBlockSize
	}
	if o.BlockSize < 4096 || o.BlockSize > 1<<20 || o.BlockSize&(o.BlockSize-1) != 0 {
		return o, fmt.Errorf("%w: %d", ErrBlockSize, o.BlockSize)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	if o.Compression < Zstd || o.Compression > XZ {
		return o, fmt.Errorf("%w: %d", ErrCompression, int(o.Compression))
	}
	return o, nil
}

// Write writes t as a squashfs image into f, which should be empty.
func Write(ctx context.Context, t *rootfs.Tree, f *os.File, o Options) error {
	o, err := o.normalize()
	if err != nil {
		return err
	}
	w, err := newImage(t, o)
	if err != nil {
		return fmt.Errorf("writing squashfs: %w", err)
	}
	if err := w.write(ctx, f); err != nil {
		return fmt.Errorf("writing squashfs: %w", err)
	}
	return nil
}
