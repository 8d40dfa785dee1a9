package image

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"

	"github.com/c2vm/c2vm/internal/safeio"
)

// Layer is one layer of an image.
type Layer struct {
	Digest    digest.Digest // of the stored (compressed) blob; "" in legacy docker archives
	Size      int64         // of the stored blob; 0 when unknown
	MediaType string
	DiffID    digest.Digest // of the uncompressed tar; "" when the config has none
	s         store
	path      string
	ctx       context.Context // stops the stream; nil = never
}

// Compression of a layer, detected from its first bytes.
type Compression string

// Layer compressions.
const (
	None Compression = "none"
	Gzip Compression = "gzip"
	Zstd Compression = "zstd"
)

// Magic numbers: RFC 1952 section 2.3.1 (gzip), RFC 8878 section 3.1.1
// (zstd frame) and 3.1.2 (skippable frame: 0x184D2A50 to 0x184D2A5F,
// little-endian, which a zstd stream may start with).
var (
	gzipMagic          = []byte{0x1f, 0x8b}
	zstdMagic          = []byte{0x28, 0xb5, 0x2f, 0xfd}
	zstdSkippableMagic = []byte{0x2a, 0x4d, 0x18} // after a byte 0x50..0x5f
)

// DetectCompression names the compression of a stream from its magic
// bytes, whatever the media type claims.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	case len(head) >= 4 && head[0]&0xf0 == 0x50 && bytes.Equal(head[1:4], zstdSkippableMagic):
		return Zstd
	}
	return None
}

// Decompression limits. A zstd frame may ask for any window; zstd's own
// streaming decoder refuses more than 1<<27 bytes unless told otherwise
// (lib/zstd.h, ZSTD_WINDOWLOG_LIMIT_DEFAULT). A layer inflating past
// maxInflateRatio times its stored size, and past minBombSize, is refused:
// deflate peaks near 1032:1 on zeros and zstd's RLE blocks near 32768:1,
// so a bomb of a few MB reaches tens of GiB, all of which the flattener
// would spool to disk. Real layers stay far below 100:1 (text compresses
// about 10:1); a layer that is mostly one huge run of zeros is refused.
const (
	maxZstdWindow   = 1 << 27
	maxInflateRatio = 100
	minBombSize     = 256 << 20
)

// Open returns the layer's uncompressed tar stream. A blob whose digest
// is known is hashed whole before it is decoded, so a corrupt blob is
// reported as a digest mismatch, not as whatever its garbage decodes to;
// a registry's blob is decoded as it downloads and hashed as it streams
// (a checkedBlob), its digest check's error taking the place of any
// error decoding it gave first.
// The uncompressed bytes are checked against DiffID as they stream: the
// Read that reaches the end returns an error wrapping ErrDigestMismatch
// when it differs, so a caller must read to EOF to know the layer is good.
func (l Layer) Open() (io.ReadCloser, error) {
	raw, size, err := l.s.open(l.path)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.name(), err)
	}
	br := bufio.NewReaderSize(safeio.Reader(l.context(), raw), 64<<10)
	head, _ := br.Peek(4)
	comp := DetectCompression(head)
	checked, _ := raw.(checkedBlob)
	verified, err := l.verifyStored(size, comp, checked)
	if err != nil {
		raw.Close()
		return nil, err
	}
	dec, closeDec, err := decoder(comp, br)
	if err != nil {
		raw.Close()
		if verr := checkedVerdict(checked, l.Digest); verr != nil {
			return nil, fmt.Errorf("layer %s: %w", l.name(), verr)
		}
		return nil, fmt.Errorf("layer %s: %s: %w: %w", l.name(), comp, ErrCorrupt, err)
	}
	out := &layerReader{r: dec, ctx: l.context(), raw: raw, closeDec: closeDec, name: l.name(), comp: comp}
	if checked != nil && checked.blobDigest() == l.Digest {
		out.checked = checked
	}
	if comp != None {
		out.r = &inflateLimit{r: out.r, max: max(minBombSize, maxInflateRatio*size), stored: size, name: l.name()}
	}
	if l.DiffID != "" && l.DiffID != verified {
		out.r = &verifier{r: out.r, h: l.DiffID.Algorithm().Hash(), want: l.DiffID, size: -1, what: "layer " + l.name() + " uncompressed (diff_id)"}
	}
	return out, nil
}

func (l Layer) context() context.Context {
	if l.ctx == nil {
		return context.Background()
	}
	return l.ctx
}

// verifyStored hashes the stored blob whole against its digest (or, for a
// legacy uncompressed layer, its diff_id) and returns the digest it
// verified ("" when it knows none); a registry's spooled blob was hashed
// as it downloads (checked), and is not hashed again. Measured on the 300 MB bench image,
// this one extra read of the compressed bytes costs far less than decoding
// them (image/bench_test.go), and it is the only way to tell a corrupt blob
// from a bad tar when the consumer, not this package, parses the tar.
func (l Layer) verifyStored(size int64, comp Compression, checked checkedBlob) (digest.Digest, error) {
	want, wantSize := l.Digest, l.Size
	if want == "" {
		if comp != None || l.DiffID == "" {
			return "", nil
		}
		want, wantSize = l.DiffID, size
	}
	if size != wantSize {
		return "", fmt.Errorf("layer %s: %w: %d bytes, descriptor says %d", l.name(), ErrDigestMismatch, size, wantSize)
	}
	if want == l.Digest && checked != nil && checked.blobDigest() == want { // hashed as it downloads
		return want, nil
	}
	raw, _, err := l.s.open(l.path)
	if err != nil {
		return "", fmt.Errorf("layer %s: %w", l.name(), err)
	}
	defer raw.Close()
	v := &verifier{r: safeio.Reader(l.context(), raw), h: want.Algorithm().Hash(), want: want, size: wantSize, what: "layer " + l.name()}
	if _, err := io.Copy(io.Discard, io.LimitReader(v, wantSize+1)); err != nil {
		return "", err
	}
	if !v.done { // more bytes than the size said
		return "", fmt.Errorf("layer %s: %w: more than the %d bytes the descriptor says", l.name(), ErrDigestMismatch, wantSize)
	}
	return want, nil
}

// checkedVerdict waits for the digest check of c, a checkedBlob of d
// (nil when it is not one), and returns its error.
func checkedVerdict(c checkedBlob, d digest.Digest) error {
	if c == nil || c.blobDigest() != d {
		return nil
	}
	return c.verdict()
}

// decoder returns the decompressing reader for comp.
func decoder(comp Compression, r io.Reader) (io.Reader, func(), error) {
	switch comp {
	case Gzip:
		gz, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return gz, func() { gz.Close() }, nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, nil, err
		}
		return zr, zr.Close, nil
	}
	return r, func() {}, nil
}

func (l Layer) name() string {
	if l.Digest != "" {
		return l.Digest.String()
	}
	return l.path
}

// layerReader marks decompression errors as ErrCorrupt and stops once its
// context is done (a zstd block may inflate a thousandfold, so checking
// the compressed side alone is not enough). Of a blob checked as it
// downloads, it ends (at EOF or at any error) only once the check is
// done, with the check's error when it failed.
type layerReader struct {
	r        io.Reader
	ctx      context.Context
	raw      io.Closer
	closeDec func()
	name     string
	comp     Compression
	checked  checkedBlob
}

func (l *layerReader) Read(p []byte) (int, error) {
	if err := l.ctx.Err(); err != nil {
		return 0, fmt.Errorf("layer %s: %w", l.name, err)
	}
	n, err := l.r.Read(p)
	if err != nil && l.checked != nil && l.ctx.Err() == nil {
		if verr := l.checked.verdict(); verr != nil {
			return n, fmt.Errorf("layer %s: %w", l.name, verr)
		}
	}
	if err != nil && err != io.EOF && !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooLarge) {
		if l.ctx.Err() != nil {
			return n, fmt.Errorf("layer %s: %w", l.name, err)
		}
		err = fmt.Errorf("layer %s: %s: %w: %w", l.name, l.comp, ErrCorrupt, err)
	}
	return n, err
}

func (l *layerReader) Close() error {
	l.closeDec()
	return l.raw.Close()
}

// inflateLimit refuses a decompressed stream past max bytes.
type inflateLimit struct {
	r      io.Reader
	n, max int64
	stored int64
	name   string
}

func (l *inflateLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.max {
		return n, fmt.Errorf("layer %s: inflates past %d MiB from %d KiB stored (over %d:1): refusing a likely decompression bomb: %w",
			l.name, l.max>>20, l.stored>>10, maxInflateRatio, ErrTooLarge)
	}
	return n, err
}

// verifier hashes what passes through and checks digest and size at EOF.
// A mismatch is returned from every Read from then on: a reader that got
// its last bytes together with the error (io.ReadFull drops an error when
// it has enough bytes) sees it on its next Read instead of a clean EOF.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
	size int64 // -1: unknown
	n    int64
	what string
	done bool
	err  error
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF && !v.done {
		v.done = true
		if v.size >= 0 && v.n != v.size {
			v.err = fmt.Errorf("%s: %w: %d bytes, descriptor says %d", v.what, ErrDigestMismatch, v.n, v.size)
		} else if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			v.err = fmt.Errorf("%s: %w: got %s", v.what, ErrDigestMismatch, got)
		}
		if v.err != nil {
			return n, v.err
		}
	}
	return n, err
}
