package erofs

import (
	"encoding/binary"
	"fmt"
	"math"
	"sort"
	"strings"
)

// le appends little-endian fields.
type le []byte

func (b le) u8(v uint8) le   { return append(b, v) }
func (b le) u16(v uint16) le { return binary.LittleEndian.AppendUint16(b, v) }
func (b le) u32(v uint32) le { return binary.LittleEndian.AppendUint32(b, v) }
func (b le) u64(v uint64) le { return binary.LittleEndian.AppendUint64(b, v) }

// inode returns n's on-disk inode and inline xattrs. iu is the i_u union:
// a block address, a device number or a count of compressed blocks.
func (n *node) inode(iu uint32) (le, error) {
	ino := n.ino
	if !ino.Type.Valid() {
		return nil, fmt.Errorf("unknown inode type %d", ino.Type)
	}
	format := uint16(n.layout) << 1
	icount := uint16(0)
	if len(n.xattrs) > 0 {
		icount = uint16(1 + (len(n.xattrs)-12)/4)
	}
	mode := uint16(ino.StatMode())
	// One allocation for the record: the inode, its xattrs and the
	// inline tail the caller appends (a million files' growing appends
	// were half the write's garbage).
	b := make(le, 0, max(int(n.meta), extSize+len(n.xattrs)))
	if !n.ext {
		b = b.u16(format).u16(icount).u16(mode).u16(uint16(ino.Nlink)).u32(uint32(n.size)).u32(0).
			u32(iu).u32(n.num).u16(uint16(ino.UID)).u16(uint16(ino.GID)).u32(0)
	} else {
		b = b.u16(format | 1).u16(icount).u16(mode).u16(0).u64(uint64(n.size)).
			u32(iu).u32(n.num).u32(uint32(ino.UID)).u32(uint32(ino.GID)).
			u64(uint64(mtime(ino).Unix())).u32(uint32(mtime(ino).Nanosecond())).u32(ino.Nlink)
		b = append(b, make([]byte, 16)...)
	}
	return append(b, n.xattrs...), nil
}

// xattrPrefixes are the namespaces an inline xattr entry can name, by
// e_name_index (erofs_fs.h: EROFS_XATTR_INDEX_USER...). The POSIX ACLs
// are whole names with an empty suffix.
var xattrPrefixes = []struct {
	prefix string
	index  uint8
}{
	{"user.", 1}, {"system.posix_acl_access", 2}, {"system.posix_acl_default", 3},
	{"trusted.", 4}, {"security.", 6},
}

// xattrIndex returns the name index and suffix of an xattr name, or false
// for names EROFS cannot store without the long-prefix table that Linux
// 6.1 does not read (other system.* names: mkfs.erofs drops them too).
func xattrIndex(name string) (uint8, string, bool) {
	for _, p := range xattrPrefixes {
		if rest, ok := strings.CutPrefix(name, p.prefix); ok {
			if strings.HasSuffix(p.prefix, ".") != (rest != "") {
				return 0, "", false
			}
			return p.index, rest, true
		}
	}
	return 0, "", false
}

// encodeXattrs returns the inline xattr body: a 12-byte
// erofs_xattr_ibody_header with no shared xattrs, then one entry per
// name in name order, each padded to 4 bytes.
func encodeXattrs(x map[string]string) ([]byte, error) {
	names := make([]string, 0, len(x))
	for k := range x {
		if _, _, ok := xattrIndex(k); ok {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return nil, nil
	}
	sort.Strings(names)
	b := make(le, 12)
	for _, k := range names {
		idx, suffix, _ := xattrIndex(k)
		v := x[k]
		if len(suffix) > math.MaxUint8 || len(v) > math.MaxUint16 {
			return nil, fmt.Errorf("%w: %s (%d bytes)", ErrXattr, k, len(v))
		}
		b = b.u8(uint8(len(suffix))).u8(idx).u16(uint16(len(v)))
		b = append(append(b, suffix...), v...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	if (len(b)-12)/4+1 > math.MaxUint16 {
		return nil, fmt.Errorf("%w: %d bytes in all", ErrXattr, len(b))
	}
	return b, nil
}

const direntSize = 12 // struct erofs_dirent

// dirBlocks splits sorted entries into directory blocks: each block is
// its dirents then their names, a name never split across blocks.
func dirBlocks(ents []dirent) [][]dirent {
	var blocks [][]dirent
	used := blockSize
	for i, e := range ents {
		if used+direntSize+len(e.name) > blockSize {
			blocks = append(blocks, ents[i:i])
			used = 0
		}
		k := len(blocks) - 1
		blocks[k] = blocks[k][:len(blocks[k])+1]
		used += direntSize + len(e.name)
	}
	return blocks
}

// dirSize is the i_size of a directory: full blocks, then the used part
// of the last one, since the kernel takes the last name to end there.
func dirSize(ents []dirent) int64 {
	blocks := dirBlocks(ents)
	last := blocks[len(blocks)-1]
	used := 0
	for _, e := range last {
		used += direntSize + len(e.name)
	}
	return int64(len(blocks)-1)*blockSize + int64(used)
}

// dirData returns a directory's contents, i_size bytes.
func dirData(ents []dirent, size int64) []byte {
	out := make([]byte, 0, size)
	var b le
	for _, blk := range dirBlocks(ents) {
		if len(out)%blockSize != 0 {
			out = append(out, make([]byte, blockSize-len(out)%blockSize)...)
		}
		nameOff := direntSize * len(blk)
		b = b[:0]
		for _, e := range blk {
			b = b.u64(e.n.nid).u16(uint16(nameOff)).u8(e.n.ino.Type.FileType()).u8(0)
			nameOff += len(e.name)
		}
		for _, e := range blk {
			b = append(b, e.name...)
		}
		out = append(out, b...)
	}
	return out
}
