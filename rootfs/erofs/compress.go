package erofs

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/c2vm/c2vm/rootfs"
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
	out      []byte
}

func (im *image) newCompressor() *compressor {
	c := &compressor{out: make([]byte, lz4.CompressBlockBound(im.o.PclusterSize))}
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

// job is one pcluster on its way from the reader through a compressing
// worker to the writer.
type job struct {
	src  []byte
	p    pcluster
	err  error
	done chan struct{}
}

// pipeline reads the compressed files' pclusters in write order, has
// Workers goroutines compress them, and hands them to the writer in that
// same order, so the output does not depend on scheduling. Memory is
// bounded by the buffers in flight, two per worker.
type pipeline struct {
	ordered chan *job
	free    chan []byte
	stop    func()
}

func (im *image) startPipeline(ctx context.Context) *pipeline {
	workers := im.o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ctx, cancel := context.WithCancel(ctx)
	inflight := 2*workers + 1
	pl := &pipeline{ordered: make(chan *job, inflight), free: make(chan []byte, inflight)}
	for range inflight {
		pl.free <- make([]byte, im.o.PclusterSize)
	}
	jobs := make(chan *job, inflight)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			c := im.newCompressor()
			for j := range jobs {
				j.p, j.err = c.squeeze(j.src)
				close(j.done)
			}
		})
	}
	wg.Go(func() {
		defer close(jobs)
		defer close(pl.ordered)
		for _, n := range im.nodes {
			if n.layout == compressedFull && !im.readPclusters(ctx, n, pl, jobs) {
				return
			}
		}
	})
	pl.stop = func() { cancel(); wg.Wait() }
	return pl
}

// readPclusters queues n's pclusters; false means stop (an error was
// queued, or the write is over).
func (im *image) readPclusters(ctx context.Context, n *node, pl *pipeline, jobs chan<- *job) bool {
	fail := func(err error) bool {
		j := &job{err: err, done: make(chan struct{})}
		close(j.done)
		select {
		case pl.ordered <- j:
		case <-ctx.Done():
		}
		return false
	}
	rc, err := n.ino.Content.Open()
	if err != nil {
		return fail(fmt.Errorf("opening content: %w", err))
	}
	defer rc.Close()
	for done := int64(0); done < n.size; {
		var buf []byte
		select {
		case buf = <-pl.free:
		case <-ctx.Done():
			return false
		}
		j := &job{src: buf[:min(int64(len(buf)), n.size-done)], done: make(chan struct{})}
		if err := rootfs.ReadContent(rc, j.src); err != nil {
			return fail(err)
		}
		done += int64(len(j.src))
		for _, ch := range []chan<- *job{pl.ordered, jobs} {
			select {
			case ch <- j:
			case <-ctx.Done():
				return false
			}
		}
	}
	return true
}

// next waits for the next pcluster in write order.
func (pl *pipeline) next(ctx context.Context) (*job, error) {
	j, ok := <-pl.ordered
	if !ok {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("compression pipeline ended early")
	}
	<-j.done
	return j, j.err
}

// writeCompressed writes a regular file's pclusters as the pipeline
// delivers them and returns its inode with the z_erofs_map_header and one
// full (8-byte) lcluster index per 4 KiB: the "legacy" layout every kernel
// with CONFIG_EROFS_FS_ZIP reads. A pcluster is HEAD1 (pointing at its
// blocks) then NONHEADs (distances back to the head and on to the next
// one, the first carrying the block count); a stored one is a PLAIN index
// per block.
func (im *image) writeCompressed(ctx context.Context, n *node, out *output, pl *pipeline) ([]byte, error) {
	var idx le
	var blocks uint32
	for done := int64(0); done < n.size; {
		j, err := pl.next(ctx)
		if err != nil {
			return nil, err
		}
		done += int64(len(j.src))
		if idx, err = appendPcluster(idx, out, j); err != nil {
			return nil, err
		}
		pl.free <- j.src[:cap(j.src)]
		if j.p.packed == nil {
			blocks += uint32(j.p.lclusters)
		} else {
			blocks += uint32(len(j.p.packed) / blockSize)
		}
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
	p := j.p
	if p.packed == nil {
		at, err := out.blocks(j.src)
		for i := range p.lclusters {
			idx = idx.u16(lclusterPlain).u16(0).u32(at + uint32(i))
		}
		return idx, err
	}
	at, err := out.blocks(p.packed)
	idx = idx.u16(lclusterHead).u16(0).u32(at)
	for i := 1; i < p.lclusters; i++ {
		d0 := uint16(i)
		if i == 1 {
			d0 = cblkcnt | uint16(len(p.packed)/blockSize)
		}
		idx = idx.u16(lclusterNonhead).u16(0).u16(d0).u16(uint16(p.lclusters - i))
	}
	return idx, err
}
