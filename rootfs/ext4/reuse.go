package ext4

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/c2vm/c2vm/internal/sparse"
)

// ext4 superblock fields (Documentation/filesystems/ext4/super.rst):
// s_magic at 0x38, s_volume_name (16 bytes, NUL-padded) at 0x78.
const (
	sbMagic      = 0x38
	sbVolumeName = 0x78
	ext4Magic    = 0xEF53
)

// ErrNotExt4 is wrapped when a file to reuse as a data disk holds no ext4
// filesystem.
var ErrNotExt4 = errors.New("not an ext4 filesystem")

// ReadLabel returns the volume label of the ext4 filesystem in r.
func ReadLabel(r io.ReaderAt) (string, error) {
	sb := make([]byte, 1024)
	if _, err := r.ReadAt(sb, sbOffset); err != nil {
		return "", fmt.Errorf("reading superblock: %w", err)
	}
	if binary.LittleEndian.Uint16(sb[sbMagic:]) != ext4Magic {
		return "", ErrNotExt4
	}
	name := sb[sbVolumeName : sbVolumeName+16]
	if i := bytes.IndexByte(name, 0); i >= 0 {
		name = name[:i]
	}
	return string(name), nil
}

// CopyData copies an existing data disk (a previous output's data-0.img)
// to dst, which must not exist, keeping its holes, and gives the copy the
// label the guest will look for. src is only read: the user's data stays
// where it was whatever happens next.
func CopyData(ctx context.Context, src, dst, label string) error {
	if err := checkLabel(label); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("data disk %s: %w", src, err)
	}
	defer in.Close()
	old, err := ReadLabel(in)
	if err != nil {
		return fmt.Errorf("data disk %s: %w", src, err)
	}
	if err := sparseCopy(ctx, in, dst); err != nil {
		return fmt.Errorf("copying data disk %s: %w", src, err)
	}
	if old == label {
		return nil
	}
	// tune2fs rewrites the superblock and its checksum (metadata_csum).
	return run(ctx, append(os.Environ(), "LC_ALL=C"), "tune2fs", "-L", label, dst)
}

// sparseCopy copies in to a new file dst: a reflink where the filesystem
// has them, else a copy that seeks over blocks of zeros so that a sparse
// disk stays sparse.
func sparseCopy(ctx context.Context, in *os.File, dst string) error {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	if cloneFile(out, in) == nil {
		return out.Close()
	}
	n, err := sparse.Copy(ctx, out, 0, io.NewSectionReader(in, 0, math.MaxInt64))
	if err != nil {
		return err
	}
	if err := out.Truncate(n); err != nil {
		return err
	}
	return out.Close()
}
