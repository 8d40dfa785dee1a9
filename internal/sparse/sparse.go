// Package sparse copies disk images without filling their holes: a block
// of zeros is skipped, not written, so a sparse input stays sparse in the
// output, and a long copy stops when its context is cancelled.
//
//	n, err := sparse.Copy(ctx, dst, off, src)
package sparse

import (
	"bytes"
	"context"
	"io"
)

// blockSize is what Copy reads at a time: big enough for few system
// calls, small enough that a cancelled context is seen at once.
const blockSize = 1 << 20

// Copy copies src to dst from offset off until src's end and returns the
// number of bytes copied. Blocks of zeros are not written: dst must read
// as zeros there already (a new or truncated file). It checks ctx before
// each block.
func Copy(ctx context.Context, dst io.WriterAt, off int64, src io.Reader) (int64, error) {
	buf := make([]byte, blockSize)
	var done int64
	for {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		n, rerr := io.ReadFull(src, buf)
		if n > 0 && !IsZero(buf[:n]) {
			if _, err := dst.WriteAt(buf[:n], off+done); err != nil {
				return done, err
			}
		}
		done += int64(n)
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			return done, nil
		}
		if rerr != nil {
			return done, rerr
		}
	}
}

// IsZero reports whether b holds only zero bytes: its first byte is zero
// and every byte equals the one before it (bytes.Equal is the vectorised
// memcmp, several times faster than a loop over the bytes).
func IsZero(b []byte) bool {
	return len(b) == 0 || b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1])
}
