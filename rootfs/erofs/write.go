package erofs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/c2vm/c2vm/internal/uuid"
	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/internal/pipeline"
)

const (
	magic = 0xE0F5E1E2 // EROFS_SUPER_MAGIC_V1

	// Incompatible features (erofs_fs.h: EROFS_FEATURE_INCOMPAT_*).
	// ZERO_PADDING puts compressed data at the end of its blocks, so the
	// kernel finds where it starts and decompresses it exactly
	// (z_erofs_lz4_decompress); COMPR_CFGS (also named BIG_PCLUSTER) says
	// a config record follows the superblock and pclusters may span
	// several blocks.
	featZeroPadding = 0x1
	featComprCfgs   = 0x2

	// lz4ConfigSize is the record after the superblock: a le16 length and
	// struct z_erofs_lz4_cfgs (max_distance, max_pclusterblks, 10
	// reserved bytes).
	lz4ConfigSize = 2 + 14
)

// output writes the data area in order and hashes all it is given, for
// the UUID.
type output struct {
	w   *bufio.Writer
	blk uint32 // next block address
	sum hash.Hash
}

// blocks writes b, padded with zeros to whole blocks, and returns its
// first block address.
func (o *output) blocks(b []byte) (uint32, error) {
	at := o.blk
	o.sum.Write(b)
	if _, err := o.w.Write(b); err != nil {
		return 0, err
	}
	if rem := len(b) % blockSize; rem != 0 {
		if _, err := o.w.Write(make([]byte, blockSize-rem)); err != nil {
			return 0, err
		}
	}
	o.blk += uint32((len(b) + blockSize - 1) / blockSize)
	return at, nil
}

func (im *image) write(ctx context.Context, f *os.File) error {
	dataAt := roundUp(im.metaAt, blockSize)
	if _, err := f.Seek(dataAt, io.SeekStart); err != nil {
		return err
	}
	out := &output{w: bufio.NewWriterSize(f, 1<<20), blk: uint32(dataAt / blockSize), sum: sha256.New()}
	pl, err := im.startPipeline(ctx)
	if err != nil {
		return err
	}
	defer pl.Stop()
	for _, n := range im.nodes {
		if err := ctx.Err(); err != nil {
			return err
		}
		rec, err := im.writeNode(n, out, pl)
		if err != nil {
			return fmt.Errorf("%s: %w", im.pathOf(n), err)
		}
		out.sum.Write(rec)
		if _, err := f.WriteAt(rec, int64(n.nid)*slotSize); err != nil {
			return fmt.Errorf("writing inode of %s: %w", im.pathOf(n), err)
		}
	}
	if err := out.w.Flush(); err != nil {
		return err
	}
	if _, err := f.WriteAt(im.superblock(out), superOffset); err != nil {
		return fmt.Errorf("writing superblock: %w", err)
	}
	// f may have held something longer; and metadata alone may end
	// mid-block.
	return f.Truncate(int64(out.blk) * blockSize)
}

// writeNode writes n's data blocks and returns its metadata record.
func (im *image) writeNode(n *node, out *output, pl *pipeline.Pipeline[pcluster]) ([]byte, error) {
	ino := n.ino
	switch {
	case n.layout == compressedFull:
		return im.writeCompressed(n, out, pl)
	case ino.Type == rootfs.TypeDir:
		return n.flat(out, dirData(n.dir, n.size))
	case ino.Type == rootfs.TypeSymlink:
		return n.flat(out, []byte(ino.Linkname))
	case ino.Type == rootfs.TypeRegular && n.size > 0:
		return n.flatFile(out)
	case ino.Type == rootfs.TypeCharDev || ino.Type == rootfs.TypeBlockDev:
		return n.inode(ino.Rdev())
	}
	return n.inode(0)
}

// flat stores data (i_size bytes) in blocks, its tail inline when the
// layout says so.
func (n *node) flat(out *output, data []byte) ([]byte, error) {
	full := len(data) - int(n.tail)
	at := uint32(0)
	if full > 0 {
		var err error
		if at, err = out.blocks(data[:full]); err != nil {
			return nil, err
		}
	}
	rec, err := n.inode(at)
	if err != nil {
		return nil, err
	}
	return append(rec, data[full:]...), nil
}

// flatFile streams an uncompressed regular file, one buffer at a time.
func (n *node) flatFile(out *output) ([]byte, error) {
	rc, err := n.ino.Content.Open()
	if err != nil {
		return nil, fmt.Errorf("opening content: %w", err)
	}
	defer rc.Close()
	full := n.size - int64(n.tail)
	at := out.blk
	buf := make([]byte, min(full, 1<<20))
	for done := int64(0); done < full; {
		b := buf[:min(int64(len(buf)), full-done)]
		if err := rootfs.ReadContent(rc, b); err != nil {
			return nil, err
		}
		if _, err := out.blocks(b); err != nil {
			return nil, err
		}
		done += int64(len(b))
	}
	tail := make([]byte, int(n.tail))
	if err := rootfs.ReadContent(rc, tail); err != nil {
		return nil, err
	}
	if full == 0 {
		at = 0
	}
	rec, err := n.inode(at)
	if err != nil {
		return nil, err
	}
	return append(rec, tail...), nil
}

// superblock returns struct erofs_super_block, followed by the lz4
// config record when files may be compressed.
func (im *image) superblock(out *output) []byte {
	id := uuid.FromHash(out.sum.Sum(nil))
	incompat, algs := uint32(0), uint16(0)
	if im.o.Compression != None {
		incompat, algs = featZeroPadding|featComprCfgs, 1<<0 // Z_EROFS_COMPRESSION_LZ4
	}
	mt := im.o.ModTime
	b := le(nil).u32(magic).u32(0).u32(0).u8(12).u8(0).u16(uint16(im.root.nid)).
		u64(uint64(len(im.nodes))).u64(uint64(mt.Unix())).u32(uint32(mt.Nanosecond())).
		u32(out.blk).u32(0).u32(0)
	b = append(b, id[:]...)
	b = append(b, make([]byte, 16)...) // volume name
	b = b.u32(incompat).u16(algs).u16(0).u16(0).u8(0)
	b = append(b, make([]byte, superSize-len(b))...)
	if im.o.Compression != None {
		b = b.u16(14).u16(0).u16(uint16(im.o.PclusterSize / blockSize))
		b = append(b, make([]byte, 10)...)
	}
	return b
}
