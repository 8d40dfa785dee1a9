package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is wrapped by every error for an input past one of the
// limits below: a kernel is untrusted input (it may come from the image),
// and a gzip bomb or a lying header must fail with a clear message, not
// exhaust memory or disk.
var ErrTooLarge = errors.New("too large")

// Limits on what is read from a kernel. Measured on Debian 12's
// linux-image-6.1.0-56-cloud-amd64: bzImage 13.5 MiB, its vmlinux 50 MiB,
// data.tar 103 MiB with 1379 members, largest module (xfs.ko) 4 MiB; the
// generic linux-image-6.1.0-*-amd64 installs 400 MB.
const (
	// MaxImageSize bounds a kernel image as read and as decompressed (a
	// gzip Image, a bzImage's payload), and a module. It is QEMU's own
	// limit for a compressed kernel (LOAD_IMAGE_MAX_GUNZIP_BYTES, 256 MiB,
	// include/hw/loader.h): -kernel would refuse a larger one anyway.
	MaxImageSize = 256 << 20

	// maxConfigSize bounds a .config (Debian's: 260 KiB), as the IKCONFIG
	// reader always did.
	maxConfigSize = 16 << 20

	// maxModinfoSize bounds a module's .modinfo section (a few KiB; the
	// largest, with a device alias per line, tens of KiB).
	maxModinfoSize = 1 << 20

	// maxDebMembers and maxDebNames bound the index of a .deb's data.tar
	// (a map held in memory): 70 times the cloud kernel's members, and
	// their names' total length.
	maxDebMembers = 100_000
	maxDebNames   = 16 << 20

	// xzMemlimit bounds xz(1)'s memory, mostly its dictionary: xz -9
	// needs 65 MiB to decompress (xz(1), the preset table); dpkg-deb uses
	// -6 (9 MiB), Linux compresses modules with dict=1MiB
	// (scripts/Makefile.modinst).
	xzMemlimit = 256 << 20
)

// maxDebData bounds a .deb's decompressed data.tar, spooled to a temp
// file: 5 times the generic Debian kernel. A variable so that tests can
// check the bound without writing gigabytes.
var maxDebData int64 = 2 << 30

// tooLarge reports what went past limit bytes.
func tooLarge(what string, limit int64) error {
	return fmt.Errorf("%s: %w (limit %s)", what, ErrTooLarge, size(limit))
}

func size(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// capReader reads from r until more than n bytes have come, then fails
// with err: unlike io.LimitReader, a stream cut at the limit is an error,
// not a silent truncation.
type capReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *capReader) Read(p []byte) (int, error) {
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	k, err := c.r.Read(p)
	if c.n -= int64(k); c.n < 0 {
		return 0, c.err
	}
	return k, err
}

// readAll reads r to its end, failing past limit bytes. It reads in
// chunks (growing to 1 MiB) joined once at the end, so that a bomb cut at
// the limit has allocated the limit once, not a growing buffer's twice
// and more.
func readAll(r io.Reader, limit int64, what string) ([]byte, error) {
	cr := &capReader{r: r, n: limit, err: tooLarge(what, limit)}
	var chunks [][]byte
	for size := 4 << 10; ; size = min(2*size, 1<<20) {
		c := make([]byte, size)
		n, err := io.ReadFull(cr, c)
		chunks = append(chunks, c[:n])
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return bytes.Join(chunks, nil), nil
		case err != nil:
			return nil, err
		}
	}
}
