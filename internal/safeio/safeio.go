// Package safeio holds the small readers every stage uses on untrusted or
// long-running input: a reader that stops when its context is done, and a
// bounded read of a regular file. Standard library only: the guest init
// links it.
package safeio

import (
	"context"
	"fmt"
	"io"
	"os"
	"syscall"
)

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

// Reader returns r stopping with ctx's error once ctx is done, so a
// cancelled conversion (SIGTERM in the CLI) stops within one read, even
// inside a huge stream.
func Reader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Open opens p for reading without waiting: O_NONBLOCK keeps open(2) of
// a FIFO from blocking until a writer comes, so the caller can stat it and
// refuse it; it changes nothing for a regular file (open(2), "O_NONBLOCK").
func Open(p string) (*os.File, error) {
	return os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// ReadFile reads p when it is a regular file (after symlinks) of at most
// limit bytes; a FIFO (the guest reads binfmt.d files an image supplies),
// a device or a larger file is refused before any read.
func ReadFile(p string, limit int64) ([]byte, error) {
	f, err := Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("%s: not a regular file of at most %d bytes", p, limit)
	}
	return io.ReadAll(io.LimitReader(f, limit))
}
