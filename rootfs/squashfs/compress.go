package squashfs

import (
	"bytes"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compressor ids in the superblock (squashfs_fs.h: ZLIB_COMPRESSION...).
var compressorID = map[Compression]uint16{Gzip: 1, XZ: 4, Zstd: 6}

// compressor compresses one block; each goroutine owns one.
type compressor interface {
	compress(dst, src []byte) ([]byte, error)
}

// newCompressor returns a compressor for data blocks, or for metadata
// when meta is set: metadata is about 1% of an image, and zstd's strongest
// level keeps 32 MiB of match tables per encoder, so metadata uses the
// next level down.
func newCompressor(c Compression, blockSize int, meta bool) (compressor, error) {
	switch c {
	case Gzip:
		return &zlibComp{}, nil
	case XZ:
		return &xzComp{dict: blockSize}, nil
	}
	// The kernel sizes its zstd window to the block size
	// (fs/squashfs/zstd_wrapper.c), so frames must not ask for more.
	level := zstdLevel
	if meta {
		level = zstd.SpeedBetterCompression
	}
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(blockSize),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	return zstdComp{enc}, nil
}

// zstdLevel trades size for speed; see bench/ for the measurements. On
// a Debian minbase (+nginx-light, 219 MB in 1800 blocks; December 2026)
// the levels give, in CPU seconds and data bytes: Best 20.5 s, 103.2 MB;
// Better 5.2 s, 106.0 MB (+2.8%); Default 2.4 s, 107.2 MB (+3.9%). The
// image at Best is already 1.045× mksquashfs -comp zstd (its level 15),
// so Better's fourfold saving would break the 1.05× size goal. Blocks
// that do not compress cost Best only 0.6 s of the 20.5: testing them
// first with the fastest level (1.6 s) costs more than it saves.
var zstdLevel = zstd.SpeedBestCompression

type zstdComp struct{ enc *zstd.Encoder }

func (z zstdComp) compress(dst, src []byte) ([]byte, error) {
	return z.enc.EncodeAll(src, dst[:0]), nil
}

// zlibComp writes zlib streams (RFC 1950), which is what squashfs calls
// gzip: the kernel inflates them with zlib_inflate and a 32 KiB window.
type zlibComp struct {
	buf bytes.Buffer
	w   *zlib.Writer
}

func (z *zlibComp) compress(dst, src []byte) ([]byte, error) {
	z.buf.Reset()
	if z.w == nil {
		w, err := zlib.NewWriterLevel(&z.buf, zlib.BestCompression)
		if err != nil {
			return nil, err
		}
		z.w = w
	} else {
		z.w.Reset(&z.buf)
	}
	if _, err := z.w.Write(src); err != nil {
		return nil, err
	}
	if err := z.w.Close(); err != nil {
		return nil, err
	}
	return append(dst[:0], z.buf.Bytes()...), nil
}

// xzComp writes .xz streams with a CRC32 check, like mksquashfs; the
// kernel's xz decoder preallocates a dictionary of the block size, so the
// stream must not declare a bigger one.
type xzComp struct {
	dict int
	buf  bytes.Buffer
}

func (x *xzComp) compress(dst, src []byte) ([]byte, error) {
	x.buf.Reset()
	w, err := xz.WriterConfig{DictCap: x.dict, CheckSum: xz.CRC32}.NewWriter(&x.buf)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(src); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return append(dst[:0], x.buf.Bytes()...), nil
}
