package squashfs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"

	"github.com/c2vm/c2vm/internal/sparse"
	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/internal/pipeline"
)

// uncompressedBlock marks a data or fragment block stored as is
// (squashfs_fs.h: SQUASHFS_COMPRESSED_BIT_BLOCK).
const uncompressedBlock = 1 << 24

// output is the image file being written front to back.
type output struct {
	w   *bufio.Writer
	off uint64
}

func (o *output) write(p []byte) error {
	n, err := o.w.Write(p)
	o.off += uint64(n)
	return err
}

// block says what a block in the pipeline is, and what became of it.
type block struct {
	file  *fileRec // nil for a fragment block
	first bool     // the file's first block
	raw   bool     // store the data uncompressed
	zero  bool     // all zero: a sparse block, nothing stored
}

type job = pipeline.Block[block]

// fragEntry is one fragment table entry: where a fragment block is.
type fragEntry struct {
	start uint64
	size  uint32
}

// findDuplicates marks files whose contents equal an earlier file's. Only
// files sharing a size with another can be duplicates, so only those are
// read (in parallel) and hashed.
func (im *image) findDuplicates(ctx context.Context) error {
	bySize := map[int64]int{}
	for _, f := range im.files {
		bySize[f.size]++
	}
	var cand []*fileRec
	for _, f := range im.files {
		if bySize[f.size] > 1 {
			cand = append(cand, f)
		}
	}
	sums := make([][sha256.Size]byte, len(cand))
	if err := parallel(ctx, im.o.Workers, len(cand), func(i int) error {
		s, err := hashContent(cand[i])
		sums[i] = s
		if err != nil {
			return fmt.Errorf("%s: %w", cand[i].path, err)
		}
		return nil
	}); err != nil {
		return err
	}
	type key struct {
		size int64
		sum  [sha256.Size]byte
	}
	first := map[key]*fileRec{}
	for i, f := range cand {
		k := key{f.size, sums[i]}
		if o := first[k]; o != nil {
			f.dupOf = o
		} else {
			first[k] = f
		}
	}
	return nil
}

func hashContent(f *fileRec) ([sha256.Size]byte, error) {
	var s [sha256.Size]byte
	r, err := f.ino.Content.Open()
	if err != nil {
		return s, fmt.Errorf("opening file: %w", err)
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, f.size))
	if err != nil {
		return s, fmt.Errorf("reading file: %w", err)
	}
	if n < f.size {
		return s, ErrShortFile
	}
	copy(s[:], h.Sum(nil))
	return s, nil
}

// parallel runs fn(0..n-1) on up to workers goroutines and returns the
// first error.
func parallel(ctx context.Context, workers, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	idx := make(chan int)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
loop:
	for i := 0; i < n; i++ {
		select {
		case idx <- i:
		case <-ctx.Done():
			break loop
		}
	}
	close(idx)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// writeData streams every distinct file through the compression pipeline
// and writes data and fragment blocks in file order.
func (im *image) writeData(ctx context.Context, out *output) ([]fragEntry, error) {
	bs := im.o.BlockSize
	newEnc := func() (pipeline.Encoder[block], error) {
		c, err := newCompressor(im.o.Compression, bs, false)
		return encoder{c}, err
	}
	p, err := pipeline.Start(ctx, pipeline.Options{Workers: im.o.Workers, InSize: bs, OutSize: bs + bs/8 + 64},
		newEnc, func(q *pipeline.Queue[block]) error { return (&producer{im: im, q: q}).run() })
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	var frags []fragEntry
	for {
		j, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := consume(out, j, &frags); err != nil {
			return nil, err
		}
		p.Release(j)
	}
	for _, f := range im.files {
		if d := f.dupOf; d != nil {
			f.start, f.blocks, f.fragIdx, f.fragOff, f.sparse = d.start, d.blocks, d.fragIdx, d.fragOff, d.sparse
		}
	}
	return frags, nil
}

// encoder compresses a block, or marks it sparse or stored as is.
type encoder struct{ c compressor }

func (e encoder) Encode(j *job) error {
	if j.Tag.file != nil && sparse.IsZero(j.In) {
		j.Tag.zero = true
		return nil
	}
	out, err := e.c.compress(j.Out, j.In)
	if err != nil {
		return fmt.Errorf("compressing block: %w", err)
	}
	j.Out = out
	j.Tag.raw = len(out) >= len(j.In)
	return nil
}

// consume writes one finished block and records where it went.
func consume(out *output, j *job, frags *[]fragEntry) error {
	t := j.Tag
	if t.file != nil && t.first {
		t.file.start = out.off
	}
	if t.zero {
		t.file.blocks = append(t.file.blocks, 0)
		t.file.sparse += uint64(len(j.In))
		return nil
	}
	p, size := j.Out, uint32(len(j.Out))
	if t.raw {
		p, size = j.In, uint32(len(j.In))|uncompressedBlock
	}
	start := out.off
	if err := out.write(p); err != nil {
		return err
	}
	if t.file == nil {
		*frags = append(*frags, fragEntry{start, size})
	} else {
		t.file.blocks = append(t.file.blocks, size)
	}
	return nil
}

// producer reads files in order, cuts them into blocks and packs their
// tails into fragment blocks.
type producer struct {
	im    *image
	q     *pipeline.Queue[block]
	frag  *job // the fragment block being filled
	nfrag uint32
}

func (p *producer) run() error {
	for _, f := range p.im.files {
		if f.dupOf != nil {
			continue
		}
		if err := p.file(f); err != nil {
			return fmt.Errorf("%s: %w", f.path, err)
		}
	}
	return p.flushFrag()
}

func (p *producer) file(f *fileRec) error {
	r, err := f.ino.Content.Open()
	if err != nil {
		return fmt.Errorf("opening file: %w", err)
	}
	defer r.Close()
	bs := int64(p.im.o.BlockSize)
	for i := int64(0); i < f.size/bs; i++ {
		j, err := p.q.Get(int(bs))
		if err != nil {
			return err
		}
		j.Tag = block{file: f, first: i == 0}
		if err := rootfs.ReadContent(r, j.In); err != nil {
			return err
		}
		if err := p.q.Put(j); err != nil {
			return err
		}
	}
	tail := int(f.size % bs)
	if tail == 0 {
		return nil
	}
	return p.addTail(f, r, tail)
}

// addTail reads a file's last tail bytes into the fragment block.
func (p *producer) addTail(f *fileRec, r io.Reader, tail int) error {
	if p.frag != nil && len(p.frag.In)+tail > p.im.o.BlockSize {
		if err := p.flushFrag(); err != nil {
			return err
		}
	}
	if p.frag == nil {
		j, err := p.q.Get(0)
		if err != nil {
			return err
		}
		p.frag = j
	}
	fb := p.frag.In
	f.fragIdx, f.fragOff = p.nfrag, uint32(len(fb))
	p.frag.In = fb[:len(fb)+tail]
	return rootfs.ReadContent(r, p.frag.In[len(fb):])
}

func (p *producer) flushFrag() error {
	if p.frag == nil {
		return nil
	}
	j := p.frag
	p.frag = nil
	p.nfrag++
	return p.q.Put(j)
}
