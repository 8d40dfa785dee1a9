package squashfs

import (
	"encoding/binary"
)

// metaSize is the uncompressed size of a metadata block
// (SQUASHFS_METADATA_SIZE).
const metaSize = 8192

// metaWriter packs a table (inodes, directories, ids...) into metadata
// blocks: each a 16-bit length, bit 15 set when stored uncompressed,
// followed by at most 8 KiB of data.
type metaWriter struct {
	comp   compressor
	pend   []byte // not yet flushed, < metaSize after each write
	out    []byte // finished blocks
	starts []int  // offset in out of each finished block
	tmp    []byte
	err    error
}

// pos returns where the next byte goes: the start of its block in out
// and the offset inside the uncompressed block.
func (m *metaWriter) pos() (block int, offset int) { return len(m.out), len(m.pend) }

// ref is pos as a squashfs inode reference: block << 16 | offset.
func (m *metaWriter) ref() uint64 {
	b, o := m.pos()
	return uint64(b)<<16 | uint64(o)
}

// upos is the position in the uncompressed stream.
func (m *metaWriter) upos() int { return len(m.starts)*metaSize + len(m.pend) }

func (m *metaWriter) write(p []byte) {
	m.pend = append(m.pend, p...)
	for len(m.pend) >= metaSize {
		m.flushBlock(m.pend[:metaSize])
		m.pend = append(m.pend[:0], m.pend[metaSize:]...)
	}
}

func (m *metaWriter) flushBlock(b []byte) {
	m.starts = append(m.starts, len(m.out))
	c, err := m.comp.compress(m.tmp, b)
	if err != nil && m.err == nil {
		m.err = err
	}
	m.tmp = c
	if err == nil && len(c) < len(b) {
		m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(c)))
		m.out = append(m.out, c...)
		return
	}
	m.out = binary.LittleEndian.AppendUint16(m.out, uint16(len(b))|0x8000)
	m.out = append(m.out, b...)
}

// finish flushes the last, partial block and returns the table.
func (m *metaWriter) finish() ([]byte, error) {
	if len(m.pend) > 0 {
		m.flushBlock(m.pend)
		m.pend = m.pend[:0]
	}
	return m.out, m.err
}

// le is a little-endian appender for on-disk structures.
type le []byte

func (b le) u16(v uint16) le { return binary.LittleEndian.AppendUint16(b, v) }
func (b le) u32(v uint32) le { return binary.LittleEndian.AppendUint32(b, v) }
func (b le) u64(v uint64) le { return binary.LittleEndian.AppendUint64(b, v) }
