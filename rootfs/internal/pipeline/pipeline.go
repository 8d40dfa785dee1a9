// Package pipeline is the block compression both rootfs writers share
// (squashfs data and fragment blocks, erofs pclusters): a reader cuts the
// files into blocks in write order, Workers goroutines encode them, and
// the writer takes them back in that same order, so the image never
// depends on scheduling. Each format keeps only its on-disk encoding: what
// a block's Tag says and what its Encoder makes of it. Memory is bounded
// by the blocks in flight, 2×Workers+1, each an input and an output buffer.
//
//	p, err := pipeline.Start(ctx, pipeline.Options{InSize: bs, OutSize: bs + bs/8},
//		newEncoder, func(q *pipeline.Queue[tag]) error { ...; b, err := q.Get(n); ...; return q.Put(b) })
//	defer p.Stop()
//	for {
//		b, err := p.Next() // io.EOF after the last block
//		...
//		p.Release(b)
//	}
package pipeline

import (
	"context"
	"io"
	"runtime"
	"sync"
)

// Block is one block on its way from the reader through an Encoder to the
// writer.
type Block[T any] struct {
	Tag T      // the format's note of what the block is; the Encoder may add to it
	In  []byte // the bytes read, in a buffer of Options.InSize
	Out []byte // the Encoder's result; empty, it starts in a buffer of Options.OutSize

	in, out []byte // the buffers at full length
	err     error
	done    chan struct{}
}

// Encoder encodes blocks; each worker goroutine owns one.
type Encoder[T any] interface {
	Encode(b *Block[T]) error
}

// Options size the pipeline.
type Options struct {
	Workers int // encoding goroutines; 0 means GOMAXPROCS
	InSize  int // the largest block the reader asks for
	OutSize int // the output buffer an Encoder starts with
}

// Queue is the reader's side of the pipeline.
type Queue[T any] struct {
	ctx           context.Context
	free          chan *Block[T]
	ordered, work chan *Block[T]
}

// Get returns a block whose In has n bytes (at most InSize, capacity
// InSize) to fill, waiting while every block is in flight.
func (q *Queue[T]) Get(n int) (*Block[T], error) {
	select {
	case b := <-q.free:
		var zero T
		b.Tag, b.In, b.Out, b.err, b.done = zero, b.in[:n], b.out[:0], nil, make(chan struct{})
		return b, nil
	case <-q.ctx.Done():
		return nil, q.ctx.Err()
	}
}

// Put queues a block from Get for encoding, and for the writer after the
// blocks put before it.
func (q *Queue[T]) Put(b *Block[T]) error {
	select {
	case q.ordered <- b:
	case <-q.ctx.Done():
		return q.ctx.Err()
	}
	select {
	case q.work <- b:
		return nil
	case <-q.ctx.Done():
		b.err = q.ctx.Err()
		close(b.done)
		return b.err
	}
}

// Pipeline is the writer's side.
type Pipeline[T any] struct {
	q       *Queue[T]
	readErr error // set before q.ordered is closed
	cancel  func()
	wg      sync.WaitGroup
}

// Start makes the encoders and starts read on its own goroutine; read
// puts the blocks in write order and returns when it has put the last.
func Start[T any](ctx context.Context, o Options, newEncoder func() (Encoder[T], error), read func(*Queue[T]) error) (*Pipeline[T], error) {
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	encs := make([]Encoder[T], workers)
	for i := range encs {
		var err error
		if encs[i], err = newEncoder(); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	inflight := 2*workers + 1
	q := &Queue[T]{ctx: ctx, free: make(chan *Block[T], inflight),
		ordered: make(chan *Block[T], inflight), work: make(chan *Block[T], inflight)}
	for range inflight {
		q.free <- &Block[T]{in: make([]byte, o.InSize), out: make([]byte, o.OutSize)}
	}
	p := &Pipeline[T]{q: q, cancel: cancel}
	for _, enc := range encs {
		p.wg.Go(func() {
			for b := range q.work {
				b.err = enc.Encode(b)
				close(b.done)
			}
		})
	}
	p.wg.Go(func() {
		p.readErr = read(q)
		close(q.work)
		close(q.ordered)
	})
	return p, nil
}

// Next waits for the next block in write order: io.EOF after the last,
// or the first error of the reader or an Encoder.
func (p *Pipeline[T]) Next() (*Block[T], error) {
	b, ok := <-p.q.ordered
	if !ok {
		if p.readErr != nil {
			return nil, p.readErr
		}
		return nil, io.EOF
	}
	<-b.done
	if b.err != nil {
		return nil, b.err
	}
	return b, nil
}

// Release gives a block the writer is done with back to the reader.
func (p *Pipeline[T]) Release(b *Block[T]) { p.q.free <- b }

// Stop ends the pipeline and waits for its goroutines; blocks not yet
// taken are dropped.
func (p *Pipeline[T]) Stop() {
	p.cancel()
	p.wg.Wait()
}
