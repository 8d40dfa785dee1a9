package image

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
)

// Layer is one layer of an image.
type Layer struct {
	Digest    digest.Digest // of the stored (compressed) blob; "" in legacy docker archives
	Size      int64         // of the stored blob; 0 when unknown
	MediaType string
	DiffID    digest.Digest // of the uncompressed tar; "" when the config has none
	s         store
	path      string
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
// (zstd frame).
var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// DetectCompression names the compression of a stream from its magic
// bytes, whatever the media type claims.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return Gzip
	case bytes.HasPrefix(head, zstdMagic):
		return Zstd
	}
	return None
}

// Open returns the layer's uncompressed tar stream. The stored bytes are
// hashed as they are read and checked against Digest and Size, and the
// uncompressed ones against DiffID: the Read that reaches the end returns
// an error wrapping ErrDigestMismatch when either differs, so a caller must
// read to EOF to know the layer is good.
func (l Layer) Open() (io.ReadCloser, error) {
	raw, _, err := l.s.open(l.path)
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", l.name(), err)
	}
	var r io.Reader = raw
	if l.Digest != "" {
		r = &verifier{r: raw, h: l.Digest.Algorithm().Hash(), want: l.Digest, size: l.Size, what: "layer " + l.name()}
	}
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	var dec io.Reader
	var closeDec func()
	switch DetectCompression(head) {
	case Gzip:
		gz, err := gzip.NewReader(br)
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("layer %s: gzip: %w: %v", l.name(), ErrCorrupt, err)
		}
		dec, closeDec = gz, func() { gz.Close() }
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("layer %s: zstd: %w: %v", l.name(), ErrCorrupt, err)
		}
		dec, closeDec = zr, zr.Close
	default:
		dec, closeDec = br, func() {}
	}
	out := &layerReader{r: dec, raw: raw, closeDec: closeDec, name: l.name()}
	if l.DiffID != "" {
		out.r = &verifier{r: dec, h: l.DiffID.Algorithm().Hash(), want: l.DiffID, size: -1, what: "layer " + l.name() + " uncompressed (diff_id)"}
	}
	return out, nil
}

func (l Layer) name() string {
	if l.Digest != "" {
		return l.Digest.String()
	}
	return l.path
}

// layerReader marks decompression errors as ErrCorrupt.
type layerReader struct {
	r        io.Reader
	raw      io.Closer
	closeDec func()
	name     string
}

func (l *layerReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("layer %s: %w: %v", l.name, ErrCorrupt, err)
	}
	return n, err
}

func (l *layerReader) Close() error {
	l.closeDec()
	return l.raw.Close()
}

// verifier hashes what passes through and checks digest and size at EOF.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	want digest.Digest
	size int64 // -1: unknown
	n    int64
	what string
	done bool
}

func (v *verifier) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if err == io.EOF && !v.done {
		v.done = true
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("%s: %w: %d bytes, descriptor says %d", v.what, ErrDigestMismatch, v.n, v.size)
		}
		if got := digest.NewDigest(v.want.Algorithm(), v.h); got != v.want {
			return n, fmt.Errorf("%s: %w: got %s", v.what, ErrDigestMismatch, got)
		}
	}
	return n, err
}
