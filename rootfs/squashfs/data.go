package squashfs

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/c2vm/c2vm/internal/sparse"
	"github.com/c2vm/c2vm/rootfs"
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

// job is one block on its way through the compressors.
type job struct {
	file   *fileRec // nil for a fragment block
	first  bool     // the file's first block
	data   []byte
	out    []byte
	raw    bool // store data uncompressed
	zero   bool // all zero: a sparse block, nothing stored
	done   chan struct{}
	err    error
	bufIn  *[]byte
	bufOut *[]byte
}

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

// writeData streams every distinct file through the compressors and
// writes data and fragment blocks in file order. At most 2×workers
// blocks are queued, which bounds memory.
func (im *image) writeData(ctx context.Context, out *output) ([]fragEntry, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bs := im.o.BlockSize
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, bs+bs/8+64); return &b }}
	work := make(chan *job)
	order := make(chan *job, 2*im.o.Workers)
	comps := make([]compressor, im.o.Workers)
	for w := range comps {
		var err error
		if comps[w], err = newCompressor(im.o.Compression, bs, false); err != nil {
			return nil, err
		}
	}
	var wg sync.WaitGroup
	for _, comp := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range work {
				j.compress(comp, pool)
				close(j.done)
			}
		}()
	}
	prodErr := make(chan error, 1)
	go func() {
		p := producer{ctx: ctx, im: im, work: work, order: order, pool: pool}
		prodErr <- p.run()
		close(work)
		close(order)
	}()
	var frags []fragEntry
	var werr error
	for j := range order {
		<-j.done
		if werr == nil {
			if werr = j.err; werr == nil {
				werr = consume(out, j, &frags)
			}
			if werr != nil {
				cancel()
			}
		}
		pool.Put(j.bufIn)
		if j.bufOut != nil {
			pool.Put(j.bufOut)
		}
	}
	wg.Wait()
	if err := <-prodErr; err != nil && (werr == nil || !errors.Is(err, context.Canceled)) {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	for _, f := range im.files {
		if d := f.dupOf; d != nil {
			f.start, f.blocks, f.fragIdx, f.fragOff, f.sparse = d.start, d.blocks, d.fragIdx, d.fragOff, d.sparse
		}
	}
	return frags, nil
}

func (j *job) compress(c compressor, pool *sync.Pool) {
	if j.file != nil && sparse.IsZero(j.data) {
		j.zero = true
		return
	}
	j.bufOut = pool.Get().(*[]byte)
	out, err := c.compress(*j.bufOut, j.data)
	if err != nil {
		j.err = fmt.Errorf("compressing block: %w", err)
		return
	}
	*j.bufOut = out[:0]
	j.out = out
	j.raw = len(out) >= len(j.data)
}

// consume writes one finished block and records where it went.
func consume(out *output, j *job, frags *[]fragEntry) error {
	if j.file != nil && j.first {
		j.file.start = out.off
	}
	if j.zero {
		j.file.blocks = append(j.file.blocks, 0)
		j.file.sparse += uint64(len(j.data))
		return nil
	}
	p, size := j.out, uint32(len(j.out))
	if j.raw {
		p, size = j.data, uint32(len(j.data))|uncompressedBlock
	}
	start := out.off
	if err := out.write(p); err != nil {
		return err
	}
	if j.file == nil {
		*frags = append(*frags, fragEntry{start, size})
	} else {
		j.file.blocks = append(j.file.blocks, size)
	}
	return nil
}

// producer reads files in order, cuts them into blocks and packs their
// tails into fragment blocks.
type producer struct {
	ctx         context.Context
	im          *image
	work, order chan *job
	pool        *sync.Pool
	frag        *[]byte
	nfrag       uint32
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
		b := p.pool.Get().(*[]byte)
		data := (*b)[:bs]
		if err := rootfs.ReadContent(r, data); err != nil {
			p.pool.Put(b)
			return err
		}
		if err := p.emit(&job{file: f, first: i == 0, data: data, bufIn: b}); err != nil {
			return err
		}
	}
	tail := int(f.size % bs)
	if tail == 0 {
		return nil
	}
	if p.frag != nil && len(*p.frag)+tail > int(bs) {
		if err := p.flushFrag(); err != nil {
			return err
		}
	}
	if p.frag == nil {
		p.frag = p.pool.Get().(*[]byte)
		*p.frag = (*p.frag)[:0]
	}
	fb := *p.frag
	f.fragIdx, f.fragOff = p.nfrag, uint32(len(fb))
	if err := rootfs.ReadContent(r, fb[len(fb):len(fb)+tail]); err != nil {
		return err
	}
	*p.frag = fb[:len(fb)+tail]
	return nil
}

func (p *producer) flushFrag() error {
	if p.frag == nil {
		return nil
	}
	b := p.frag
	p.frag = nil
	p.nfrag++
	return p.emit(&job{data: *b, bufIn: b})
}

// emit queues j for the writer (in order) and for a compressor.
func (p *producer) emit(j *job) error {
	j.done = make(chan struct{})
	select {
	case p.order <- j:
	case <-p.ctx.Done():
		p.pool.Put(j.bufIn)
		return p.ctx.Err()
	}
	select {
	case p.work <- j:
		return nil
	case <-p.ctx.Done():
		j.err = p.ctx.Err()
		close(j.done)
		return p.ctx.Err()
	}
}
