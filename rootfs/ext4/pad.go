package ext4

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Superblock fields used below (Documentation/filesystems/ext4/super.rst).
const (
	sbOffset          = 1024
	sbBlocksCountLo   = 0x4
	sbFirstDataBlock  = 0x14
	sbLogBlockSize    = 0x18
	sbBlocksPerGroup  = 0x20
	sbInodesPerGroup  = 0x28
	sbFeatureIncompat = 0x60
	sbFeatureROCompat = 0x64
	sbDescSize        = 0xfe
	incompat64bit     = 0x80
	roCompatGdtCsum   = 0x10
	roCompatMetaCsum  = 0x400
)

// padInodeBitmaps sets the bits past the last inode of each group's inode
// bitmap, as mke2fs does and e2fsck checks ("Padding at end of inode
// bitmap is not set"): compactext4 (hcsshim v0.15.0) leaves them clear.
// Its images carry no group checksums, so no checksum needs updating;
// one that did would be left alone.
func padInodeBitmaps(f io.ReaderAt, w io.WriterAt) error {
	sb := make([]byte, 1024)
	if _, err := f.ReadAt(sb, sbOffset); err != nil {
		return fmt.Errorf("reading superblock: %w", err)
	}
	le := binary.LittleEndian
	if le.Uint32(sb[sbFeatureROCompat:])&(roCompatGdtCsum|roCompatMetaCsum) != 0 {
		return nil
	}
	blockSize := int64(1024) << le.Uint32(sb[sbLogBlockSize:])
	blocks := int64(le.Uint32(sb[sbBlocksCountLo:]))
	first := int64(le.Uint32(sb[sbFirstDataBlock:]))
	perGroup := int64(le.Uint32(sb[sbBlocksPerGroup:]))
	inodesPerGroup := int64(le.Uint32(sb[sbInodesPerGroup:]))
	if perGroup == 0 || inodesPerGroup >= blockSize*8 {
		return nil
	}
	descSize := int64(32)
	is64 := le.Uint32(sb[sbFeatureIncompat:])&incompat64bit != 0
	if is64 {
		descSize = int64(le.Uint16(sb[sbDescSize:]))
	}
	groups := (blocks - first + perGroup - 1) / perGroup
	gdt := (first + 1) * blockSize
	desc := make([]byte, descSize)
	bitmap := make([]byte, blockSize)
	for g := int64(0); g < groups; g++ {
		if _, err := f.ReadAt(desc, gdt+g*descSize); err != nil {
			return fmt.Errorf("group %d descriptor: %w", g, err)
		}
		blk := int64(le.Uint32(desc[4:]))
		if is64 && descSize >= 0x28 {
			blk |= int64(le.Uint32(desc[0x24:])) << 32
		}
		if _, err := f.ReadAt(bitmap, blk*blockSize); err != nil {
			return fmt.Errorf("group %d inode bitmap: %w", g, err)
		}
		for i := inodesPerGroup; i < blockSize*8; i++ {
			bitmap[i/8] |= 1 << (i % 8)
		}
		if _, err := w.WriteAt(bitmap, blk*blockSize); err != nil {
			return fmt.Errorf("group %d inode bitmap: %w", g, err)
		}
	}
	return nil
}
