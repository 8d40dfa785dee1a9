package squashfs

import (
	"fmt"
	"math"
)

// Directory listing limits (squashfs_fs.h: SQUASHFS_DIR_COUNT): a header
// covers at most 256 entries whose inodes share one metadata block and
// whose inode numbers are within a signed 16-bit delta of the header's.
const dirCount = 256

// dirIndex is one entry of an extended directory inode's index: where a
// header that starts in a new metadata block lies, so the kernel can
// skip to it in lookups.
type dirIndex struct {
	index uint32 // byte offset in the listing
	start uint32 // its metadata block, relative to the directory table
	name  string // the header's first name
}

// tables are the inode and directory tables being built.
type tables struct {
	inodes, dirs *metaWriter
}

// writeTree writes the inodes of d's subtree, children first, then d's
// listing and d's inode. parent is the inode number of d's parent.
func (im *image) writeTree(d *dnode, parent uint32, t *tables) error {
	for _, c := range d.rec.dir.children {
		var err error
		switch {
		case c.rec.dir != nil:
			err = im.writeTree(c, d.rec.num, t)
		case !c.rec.written:
			err = im.writeInode(c.rec, t)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", c.name, err)
		}
	}
	block, offset := t.dirs.pos()
	size, index := writeListing(d.rec.dir.children, t.dirs)
	return im.writeDirInode(d.rec, parent, uint32(block), uint32(offset), size+3, index, t)
}

func (im *image) writeInode(r *irec, t *tables) error {
	b, err := r.encode()
	if err != nil {
		return err
	}
	r.ref, r.written = t.inodes.ref(), true
	t.inodes.write(b)
	return nil
}

// group is the entries under one directory header.
type group struct{ from, to int }

// writeListing writes a directory's entries into the directory table and
// returns the listing's size and its index.
func writeListing(children []*dnode, dt *metaWriter) (uint32, []dirIndex) {
	startU := dt.upos()
	indexed := startU / metaSize
	var index []dirIndex
	for _, g := range groups(children, startU) {
		block, _ := dt.pos()
		u := dt.upos()
		if u/metaSize != indexed { // the first header in a new block
			indexed = u / metaSize
			index = append(index, dirIndex{uint32(u - startU), uint32(block), children[g.from].name})
		}
		first := children[g.from].rec
		dt.write(le(nil).u32(uint32(g.to - g.from - 1)).u32(uint32(first.ref >> 16)).u32(first.num))
		for _, c := range children[g.from:g.to] {
			r := c.rec
			e := le(nil).u16(uint16(r.ref)).u16(uint16(int16(int32(r.num) - int32(first.num)))).
				u16(basicType[r.ino.Type]).u16(uint16(len(c.name) - 1)).str(c.name)
			dt.write(e)
		}
	}
	return uint32(dt.upos() - startU), index
}

// groups splits entries into headers. A new header starts when the
// shared block or delta rules would break, after 256 entries, and when
// the listing crosses into a new metadata block, so that every metadata
// block holding the listing can be found from the index.
func groups(cs []*dnode, u int) []group {
	var gs []group
	var hdrU int
	var base *irec
	for i, c := range cs {
		r := c.rec
		if len(gs) == 0 || i-gs[len(gs)-1].from >= dirCount || r.ref>>16 != base.ref>>16 ||
			int64(r.num)-int64(base.num) > math.MaxInt16 || int64(r.num)-int64(base.num) < math.MinInt16 ||
			u/metaSize != hdrU/metaSize {
			gs = append(gs, group{from: i})
			hdrU, base = u, r
			u += 12
		}
		u += 8 + len(c.name)
		gs[len(gs)-1].to = i + 1
	}
	return gs
}

// writeDirInode writes a directory inode, extended when it has an index,
// xattrs, or a listing too big for the basic form.
func (im *image) writeDirInode(r *irec, parent, block, offset, size uint32, index []dirIndex, t *tables) error {
	if len(index) > 0xFFFF {
		return fmt.Errorf("directory too large")
	}
	var b le
	if len(index) > 0 || r.xattr != noIndex || size > math.MaxUint16 {
		b = r.header(typeDir + extended).u32(r.ino.Nlink).u32(size).u32(block).u32(parent).
			u16(uint16(len(index))).u16(uint16(offset)).u32(r.xattr)
		for _, x := range index {
			b = b.u32(x.index).u32(x.start).u32(uint32(len(x.name) - 1)).str(x.name)
		}
	} else {
		b = r.header(typeDir).u32(block).u32(r.ino.Nlink).u16(uint16(size)).u16(uint16(offset)).u32(parent)
	}
	r.ref, r.written = t.inodes.ref(), true
	t.inodes.write(b)
	return nil
}
