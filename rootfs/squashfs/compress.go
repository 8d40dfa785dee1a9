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

// blockKind says what a compressor is for: zstd spends its strongest
// level where it pays most for its CPU.
type blockKind int

const (
	dataBlock blockKind = iota // a file's full blocks
	fragBlock                  // file tails packed together
	metaBlock                  // inode, directory and lookup tables
)

// newCompressor returns a compressor for blocks of one kind.
func newCompressor(c Compression, blockSize int, kind blockKind) (compressor, error) {
	switch c {
	case Gzip:
		return &zlibComp{}, nil
	case XZ:
		return &xzComp{dict: blockSize}, nil
	}
	// The kernel sizes its zstd window to the block size
	// (fs/squashfs/zstd_wrapper.c), so frames must not ask for more.
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstdLevel[kind]),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(blockSize),
		zstd.WithEncoderCRC(false),
		zstd.WithLowerEncoderMem(true))
	if err != nil {
		return nil, err
	}
	return zstdComp{enc}, nil
}

// zstdLevel trades size for speed by block kind. On a Debian bookworm
// minbase (188 MB of distinct file data: 991 full blocks, and 5195 tails
// in 642 fragment blocks; December 2026), one core's CPU seconds (noisy:
// a shared machine) and compressed bytes:
//
//	           full blocks         fragment blocks
//	Best       5.5-6.5 s 60.54 MB  3.0-3.6 s 28.56 MB
//	Better     0.9-1.3 s 61.95 MB  0.4-0.6 s 29.47 MB
//	Default    0.7-0.8 s 62.70 MB  0.3-0.4 s 29.82 MB
//
// with the fragments in the order of sortTails (in walk order they are
// 1.1-1.3 MB larger at every level). mksquashfs -comp zstd (its level 15)
// makes an 86.5 MB image, and the 1.05× size goal leaves 90.8 MB: Best
// everywhere makes 89.1 MB of data for ~9 s, Better everywhere 91.4 MB
// for ~1.5 s, and Best on fragment blocks only 90.5 MB for ~4 s (image
// 1.048×). No cheap predictor picks the data blocks where Best pays: its
// gain per CPU second is flat across Better's ratios. Best's cost is
// mostly cache misses in its 32 MiB match table (a copy of the encoder
// with a 1 MiB table runs 2.2× faster for +0.02%), a constant of
// klauspost/compress. Metadata, ~0.2% of an image, is compressed by one
// goroutine after the data.
var zstdLevel = [...]zstd.EncoderLevel{
	dataBlock: zstd.SpeedBetterCompression,
	fragBlock: zstd.SpeedBestCompression,
	metaBlock: zstd.SpeedBetterCompression,
}

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
