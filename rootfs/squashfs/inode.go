package squashfs

import (
	"fmt"
	"math"

	"github.com/c2vm/c2vm/rootfs"
)

// Inode types (squashfs_fs.h: SQUASHFS_DIR_TYPE...); the extended form
// of each is the basic one plus 7.
const (
	typeDir     = 1
	typeFile    = 2
	typeSymlink = 3
	typeBlock   = 4
	typeChar    = 5
	typeFIFO    = 6
	typeSocket  = 7
	extended    = 7
)

var basicType = map[rootfs.Type]uint16{
	rootfs.TypeDir: typeDir, rootfs.TypeRegular: typeFile, rootfs.TypeSymlink: typeSymlink,
	rootfs.TypeBlockDev: typeBlock, rootfs.TypeCharDev: typeChar, rootfs.TypeFIFO: typeFIFO,
	rootfs.TypeSocket: typeSocket,
}

// header is the part common to every inode. The mode field holds only
// the low 12 bits, as mksquashfs writes it (SQUASHFS_MODE): the type comes
// from the inode type, and Linux 6.18 refuses to read an inode whose mode
// also carries S_IFMT bits ("Unable to read inode").
func (r *irec) header(b le, typ uint16) le {
	ino := r.ino
	return b.u16(typ).u16(uint16(ino.Mode & 0o7777)).
		u16(r.uidIdx).u16(r.gidIdx).u32(mtime(ino)).u32(r.num)
}

// mtime clamps to the 32-bit unsigned seconds squashfs stores.
func mtime(ino *rootfs.Inode) uint32 {
	s := ino.ModTime.Unix()
	if ino.ModTime.IsZero() || s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// encode appends a non-directory inode to b.
func (r *irec) encode(b le) (le, error) {
	ino := r.ino
	typ := basicType[ino.Type]
	if typ == 0 {
		return nil, fmt.Errorf("unknown inode type %d", ino.Type)
	}
	ext := r.xattr != noIndex
	switch ino.Type {
	case rootfs.TypeRegular:
		return r.encodeFile(b), nil
	case rootfs.TypeSymlink:
		if ext {
			return r.header(b, typ+extended).u32(ino.Nlink).u32(uint32(len(ino.Linkname))).str(ino.Linkname).u32(r.xattr), nil
		}
		return r.header(b, typ).u32(ino.Nlink).u32(uint32(len(ino.Linkname))).str(ino.Linkname), nil
	case rootfs.TypeBlockDev, rootfs.TypeCharDev:
		if ext {
			return r.header(b, typ+extended).u32(ino.Nlink).u32(ino.Rdev()).u32(r.xattr), nil
		}
		return r.header(b, typ).u32(ino.Nlink).u32(ino.Rdev()), nil
	}
	if ext {
		return r.header(b, typ+extended).u32(ino.Nlink).u32(r.xattr), nil
	}
	return r.header(b, typ).u32(ino.Nlink), nil
}

func (b le) str(s string) le { return append(b, s...) }

// encodeFile uses the basic form unless something needs the extended one:
// a link count, xattrs, sparse blocks or offsets past 4 GiB.
func (r *irec) encodeFile(b le) le {
	f := r.file
	if r.ino.Nlink > 1 || r.xattr != noIndex || f.sparse > 0 || f.start > math.MaxUint32 || f.size > math.MaxUint32 {
		b = r.header(b, typeFile+extended).u64(f.start).u64(uint64(f.size)).u64(f.sparse).
			u32(r.ino.Nlink).u32(f.fragIdx).u32(f.fragOff).u32(r.xattr)
	} else {
		b = r.header(b, typeFile).u32(uint32(f.start)).u32(f.fragIdx).u32(f.fragOff).u32(uint32(f.size))
	}
	for _, s := range f.blocks {
		b = b.u32(s)
	}
	return b
}
