package ext4

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
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
	buf := make([]byte, 1<<20)
	zero := make([]byte, len(buf))
	var off int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, rerr := io.ReadFull(io.NewSectionReader(in, off, int64(len(buf))), buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := out.WriteAt(buf[:n], off); err != nil {
				return err
			}
		}
		off += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if err := out.Truncate(off); err != nil {
		return err
	}
	return out.Close()
}
