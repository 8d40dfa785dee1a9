package erofs

import (
	"context"
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"

	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/internal/pipeline"
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

// compressor holds one lz4 compressor and its output buffer.
type compressor struct {
	compress func(src, dst []byte) (int, error)
	out      []byte
}

func (im *image) newCompressor() (pipeline.Encoder[pcluster], error) {
	c := &compressor{out: make([]byte, lz4.CompressBlockBound(im.o.PclusterSize))}
	switch im.o.Compression {
	case LZ4HC:
		hc := &lz4.CompressorHC{Level: lz4.Level9}
		c.compress = hc.CompressBlock
	default:
		var fast lz4.Compressor
		c.compress = fast.CompressBlock
	}
	return c, nil
}

// pcluster is one compressed extent: the lclusters it covers and whether
// compression saved at least a block, when the block's Out is the lz4
// block that replaces them.
type pcluster struct {
	lclusters int
	packed    bool // false: stored as is
}

type job = pipeline.Block[pcluster]

// Encode compresses j.In, the data of one pcluster.
func (c *compressor) Encode(j *job) error {
	src := j.In
	j.Tag.lclusters = (len(src) + blockSize - 1) / blockSize
	n, err := c.compress(src, c.out)
	if err != nil {
		return fmt.Errorf("lz4: %w", err)
	}
	// n == 0: incompressible. Compressed data must save a whole block to
	// be worth decompressing.
	if n > 0 && (n+blockSize-1)/blockSize < j.Tag.lclusters {
		// ZERO_PADDING: the data ends at the end of its last block.
		pad := (blockSize - n%blockSize) % blockSize
		j.Out = append(append(j.Out[:0], make([]byte, pad)...), c.out[:n]...)
		j.Tag.packed = true
	}
	return nil
}

// startPipeline has the shared pipeline compress the compressed files'
// pclusters, read in write order.
func (im *image) startPipeline(ctx context.Context) (*pipeline.Pipeline[pcluster], error) {
	return pipeline.Start(ctx, pipeline.Options{Workers: im.o.Workers, InSize: im.o.PclusterSize, OutSize: im.o.PclusterSize},
		im.newCompressor, func(q *pipeline.Queue[pcluster]) error {
			for _, n := range im.nodes {
				if n.layout != compressedFull {
					continue
				}
				// An error reaches the writer at n's turn, which names n.
				if err := im.readPclusters(n, q); err != nil {
					return err
				}
			}
			return nil
		})
}

// readPclusters queues n's pclusters.
func (im *image) readPclusters(n *node, q *pipeline.Queue[pcluster]) error {
	rc, err := n.ino.Content.Open()
	if err != nil {
		return fmt.Errorf("opening content: %w", err)
	}
	defer rc.Close()
	for done := int64(0); done < n.size; {
		j, err := q.Get(int(min(int64(im.o.PclusterSize), n.size-done)))
		if err != nil {
			return err
		}
		if err := rootfs.ReadContent(rc, j.In); err != nil {
			return err
		}
		done += int64(len(j.In))
		if err := q.Put(j); err != nil {
			return err
		}
	}
	return nil
}

// next waits for the next pcluster in write order.
func next(pl *pipeline.Pipeline[pcluster]) (*job, error) {
	j, err := pl.Next()
	if err == io.EOF {
		return nil, fmt.Errorf("compression pipeline ended early")
	}
	return j, err
}

// writeCompressed writes a regular file's pclusters as the pipeline
// delivers them and returns its inode with the z_erofs_map_header and one
// full (8-byte) lcluster index per 4 KiB: the "legacy" layout every kernel
// with CONFIG_EROFS_FS_ZIP reads. A pcluster is HEAD1 (pointing at its
// blocks) then NONHEADs (distances back to the head and on to the next
// one, the first carrying the block count); a stored one is a PLAIN index
// per block.
func (im *image) writeCompressed(n *node, out *output, pl *pipeline.Pipeline[pcluster]) ([]byte, error) {
	var idx le
	var blocks uint32
	for done := int64(0); done < n.size; {
		j, err := next(pl)
		if err != nil {
			return nil, err
		}
		done += int64(len(j.In))
		if idx, err = appendPcluster(idx, out, j); err != nil {
			return nil, err
		}
		if j.Tag.packed {
			blocks += uint32(len(j.Out) / blockSize)
		} else {
			blocks += uint32(j.Tag.lclusters)
		}
		pl.Release(j)
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

// appendPcluster writes one pcluster's blocks and appends its indexes.
func appendPcluster(idx le, out *output, j *job) (le, error) {
	p := j.Tag
	if !p.packed {
		at, err := out.blocks(j.In)
		for i := range p.lclusters {
			idx = idx.u16(lclusterPlain).u16(0).u32(at + uint32(i))
		}
		return idx, err
	}
	at, err := out.blocks(j.Out)
	idx = idx.u16(lclusterHead).u16(0).u32(at)
	for i := 1; i < p.lclusters; i++ {
		d0 := uint16(i)
		if i == 1 {
			d0 = cblkcnt | uint16(len(j.Out)/blockSize)
		}
		idx = idx.u16(lclusterNonhead).u16(0).u16(d0).u16(uint16(p.lclusters - i))
	}
	return idx, err
}
