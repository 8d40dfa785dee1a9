package erofs

import (
	"fmt"

	"github.com/pierrec/lz4/v4"
)

// Logical cluster index types (erofs_fs.h: Z_EROFS_LCLUSTER_TYPE_*), and
// the flag that marks a pcluster's block count in the first NONHEAD
// index (Z_EROFS_LI_D0_CBLKCNT).
const (
	lclusterPlain   = 0
	lclusterHead    = 1
	lclusterNonhead = 2
	cblkcnt         = 1 << 11

	adviseBigPcluster = 0x0002 // Z_EROFS_ADVISE_BIG_PCLUSTER_1
)

// compressor holds one lz4 compressor and its buffers.
type compressor struct {
	compress func(src, dst []byte) (int, error)
	in, out  []byte
}

func (im *image) newCompressor() *compressor {
	c := &compressor{in: make([]byte, im.o.PclusterSize), out: make([]byte, lz4.CompressBlockBound(im.o.PclusterSize))}
	switch im.o.Compression {
	case LZ4HC:
		hc := &lz4.CompressorHC{Level: lz4.Level9}
		c.compress = hc.CompressBlock
	default:
		var fast lz4.Compressor
		c.compress = fast.CompressBlock
	}
	return c
}

// pcluster is one compressed extent: the lclusters it covers and, when
// compression saved at least a block, the lz4 block that replaces them.
type pcluster struct {
	lclusters int
	packed    []byte // nil: stored as is
}

// squeeze compresses src, the data of one pcluster.
func (c *compressor) squeeze(src []byte) (pcluster, error) {
	p := pcluster{lclusters: (len(src) + blockSize - 1) / blockSize}
	n, err := c.compress(src, c.out)
	if err != nil {
		return p, fmt.Errorf("lz4: %w", err)
	}
	// n == 0: incompressible. Compressed data must save a whole block to
	// be worth decompressing.
	if n > 0 && (n+blockSize-1)/blockSize < p.lclusters {
		// ZERO_PADDING: the data ends at the end of its last block.
		pad := (blockSize - n%blockSize) % blockSize
		p.packed = append(make([]byte, pad, pad+n), c.out[:n]...)
	}
	return p, nil
}

// writeCompressed streams a regular file in pclusters and returns its
// inode with the z_erofs_map_header and one full (8-byte) lcluster index
// per 4 KiB: the "legacy" layout every kernel with CONFIG_EROFS_FS_ZIP
// reads. A pcluster is HEAD1 (pointing at its blocks) then NONHEADs
// (distances back to the head and on to the next one, the first carrying
// the block count); a stored one is a PLAIN index per block.
func (im *image) writeCompressed(n *node, out *output, c *compressor) ([]byte, error) {
	rc, err := n.ino.Content.Open()
	if err != nil {
		return nil, fmt.Errorf("opening content: %w", err)
	}
	defer rc.Close()
	var idx le
	var blocks uint32
	for done := int64(0); done < n.size; {
		src := c.in[:min(int64(len(c.in)), n.size-done)]
		if err := readFull(rc, src); err != nil {
			return nil, err
		}
		done += int64(len(src))
		p, err := c.squeeze(src)
		if err != nil {
			return nil, err
		}
		if p.packed == nil {
			at, err := out.blocks(src)
			if err != nil {
				return nil, err
			}
			for i := range p.lclusters {
				idx = idx.u16(lclusterPlain).u16(0).u32(at + uint32(i))
			}
			blocks += uint32(p.lclusters)
			continue
		}
		at, err := out.blocks(p.packed)
		if err != nil {
			return nil, err
		}
		cb := uint16(len(p.packed) / blockSize)
		idx = idx.u16(lclusterHead).u16(0).u32(at)
		for i := 1; i < p.lclusters; i++ {
			d0 := uint16(i)
			if i == 1 {
				d0 = cblkcnt | cb
			}
			idx = idx.u16(lclusterNonhead).u16(0).u16(d0).u16(uint16(p.lclusters - i))
		}
		blocks += uint32(cb)
	}
	rec, err := n.inode(blocks)
	if err != nil {
		return nil, err
	}
	// z_erofs_map_header: no tail packing, big pclusters, lz4 for HEAD1,
	// 4 KiB lclusters; then 8 reserved bytes.
	start := indexStart(len(rec))
	rec = append(rec, make([]byte, start-16-len(rec))...)
	rec = le(rec).u32(0).u16(adviseBigPcluster).u8(0).u8(0).u64(0)
	return append(rec, idx...), nil
}
