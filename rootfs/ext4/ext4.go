// Package ext4 writes a rootfs.Tree as an ext4 image, rootless and exact
// (owners, modes, devices, hardlinks, xattrs), through hcsshim's tar2ext4.
//
// tar2ext4 (github.com/Microsoft/hcsshim/ext4/tar2ext4) builds the
// filesystem in one pass from a tar stream that lists parents before
// children and hardlink targets before links — what Tree.WriteTar emits. It
// writes no UUID, hash seed or clock time of its own (read in
// ext4/internal/compactext4 v0.15.0: the superblock UUID stays zero and every
// inode time comes from the tar header), so the image depends only on the
// tree.
//
// WriteData (data.go) writes the other kind of ext4 image: a writable data
// disk of a given size, seeded from a tree, made with e2fsprogs.
package ext4

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/Microsoft/hcsshim/ext4/tar2ext4"

	"github.com/c2vm/c2vm/internal/safeio"
	"github.com/c2vm/c2vm/rootfs"
)

// Options configure Write; the zero value is the default.
type Options struct{}

// Format is the ext4 rootfs.Writer.
type Format struct{ Options Options }

var _ rootfs.Writer = Format{}

// Write implements rootfs.Writer.
func (f Format) Write(ctx context.Context, t *rootfs.Tree, out *os.File) error {
	return Write(ctx, t, out, f.Options)
}

// Write writes t as an ext4 image into out.
func Write(ctx context.Context, t *rootfs.Tree, out *os.File, _ Options) error {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(t.WriteTar(pw))
	}()
	defer pr.Close()
	// Small files and symlinks go inline in their inodes: smaller images,
	// fewer blocks to read at boot.
	r := io.Reader(pr)
	if err := tar2ext4.ConvertTarToExt4(safeio.Reader(ctx, r), out, tar2ext4.InlineData); err != nil {
		return fmt.Errorf("tar2ext4: %w", err)
	}
	return padInodeBitmaps(out, out)
}
