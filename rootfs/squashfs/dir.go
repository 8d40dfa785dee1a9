package squashfs

import (
	"fmt"
	"math"

	"github.com/c2vm/c2vm/rootfs"
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
	scratch      le // an inode or listing entry being encoded
}

// inodeWriter is the state of writeInodes' walk.
type inodeWriter struct {
	im    *image
	t     *tables
	num   uint32 // the last inode number given
	files int    // how many of im.files have been met
	links map[*rootfs.Inode]dentry
	spare [][]dentry // listings of directories left, for reuse
}

// writeInodes walks the tree again and writes every inode and directory
// listing as it goes: a file's inode when the walk meets it, a
// directory's listing and inode when the walk leaves it (children first,
// so the root is last). Inode numbers follow that order; a directory's
// own number is known on entry from its count of inodes below
// (newImage), so its children's listing can name their parent. Only the
// open directories' listings and the inodes with several names are held.
func (im *image) writeInodes(t *tables) error {
	iw := &inodeWriter{im: im, t: t, links: map[*rootfs.Inode]dentry{}}
	w := &dirWalk{leave: iw.leave}
	err := im.tree.Walk(func(e rootfs.Entry) error {
		parent, err := w.to(e)
		if err == nil {
			err = iw.entry(w, parent, e)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", e.Path, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return w.finish()
}

func (iw *inodeWriter) entry(w *dirWalk, parent *frame, e rootfs.Entry) error {
	if e.LinkTarget != "" {
		l, ok := iw.links[e.Inode]
		if !ok {
			return fmt.Errorf("hardlink to %s met before it", e.LinkTarget)
		}
		l.name = e.Name
		parent.entries = append(parent.entries, l)
		return nil
	}
	r, err := iw.im.rec(e.Inode, iw.nextFile)
	if err != nil {
		return err
	}
	if e.Inode.Type == rootfs.TypeDir {
		r.num = iw.num + iw.im.subtree[e.Inode] + 1
		f := w.push(e, r)
		if n := len(iw.spare); n > 0 {
			f.entries, iw.spare = iw.spare[n-1], iw.spare[:n-1]
		}
		return nil
	}
	iw.num++
	r.num = iw.num
	if err := iw.im.writeInode(&r, iw.t); err != nil {
		return err
	}
	d := dentry{name: e.Name, ref: r.ref, num: r.num, typ: e.Inode.Type}
	if e.Inode.Nlink > 1 {
		iw.links[e.Inode] = d
	}
	parent.entries = append(parent.entries, d)
	return nil
}

// nextFile is the record newImage made for the next file with data.
func (iw *inodeWriter) nextFile() (*fileRec, error) {
	if iw.files >= len(iw.im.files) {
		return nil, fmt.Errorf("a file with data the first walk did not see")
	}
	iw.files++
	return iw.im.files[iw.files-1], nil
}

// leave writes directory d's listing and inode, now that its children's
// are written, and adds it to its parent's listing.
func (iw *inodeWriter) leave(d, parent *frame) error {
	if iw.num+1 != d.rec.num {
		return fmt.Errorf("%s: inode number %d, want %d: the tree changed between walks", d.path, iw.num+1, d.rec.num)
	}
	iw.num = d.rec.num
	parentNum := iw.im.nInode + 1 // the root's, as mksquashfs writes it
	if parent != nil {
		parentNum = parent.rec.num
	}
	block, offset := iw.t.dirs.pos()
	size, index := writeListing(d.entries, iw.t.dirs)
	iw.spare = append(iw.spare, d.entries[:0])
	d.entries = nil
	if err := iw.im.writeDirInode(&d.rec, parentNum, uint32(block), uint32(offset), size+3, index, iw.t); err != nil {
		return fmt.Errorf("%s: %w", d.path, err)
	}
	if parent == nil {
		iw.im.rootRef = d.rec.ref
		return nil
	}
	parent.entries = append(parent.entries, dentry{name: d.name, ref: d.rec.ref, num: d.rec.num, typ: rootfs.TypeDir})
	return nil
}

func (im *image) writeInode(r *irec, t *tables) error {
	b, err := r.encode(t.scratch[:0])
	if err != nil {
		return err
	}
	r.ref = t.inodes.ref()
	t.inodes.write(b)
	t.scratch = b
	return nil
}

// group is the entries under one directory header.
type group struct{ from, to int }

// writeListing writes a directory's entries into the directory table and
// returns the listing's size and its index.
func writeListing(children []dentry, dt *metaWriter) (uint32, []dirIndex) {
	startU := dt.upos()
	indexed := startU / metaSize
	var index []dirIndex
	var b le // each header and entry in turn
	for _, g := range groups(children, startU) {
		block, _ := dt.pos()
		u := dt.upos()
		if u/metaSize != indexed { // the first header in a new block
			indexed = u / metaSize
			index = append(index, dirIndex{uint32(u - startU), uint32(block), children[g.from].name})
		}
		first := children[g.from]
		b = b[:0].u32(uint32(g.to - g.from - 1)).u32(uint32(first.ref >> 16)).u32(first.num)
		dt.write(b)
		for _, c := range children[g.from:g.to] {
			b = b[:0].u16(uint16(c.ref)).u16(uint16(int16(int32(c.num) - int32(first.num)))).
				u16(basicType[c.typ]).u16(uint16(len(c.name) - 1)).str(c.name)
			dt.write(b)
		}
	}
	return uint32(dt.upos() - startU), index
}

// groups splits entries into headers. A new header starts when the
// shared block or delta rules would break, after 256 entries, and when
// the listing crosses into a new metadata block, so that every metadata
// block holding the listing can be found from the index.
func groups(cs []dentry, u int) []group {
	var gs []group
	var hdrU int
	var base dentry
	for i, r := range cs {
		if len(gs) == 0 || i-gs[len(gs)-1].from >= dirCount || r.ref>>16 != base.ref>>16 ||
			int64(r.num)-int64(base.num) > math.MaxInt16 || int64(r.num)-int64(base.num) < math.MinInt16 ||
			u/metaSize != hdrU/metaSize {
			gs = append(gs, group{from: i})
			hdrU, base = u, r
			u += 12
		}
		u += 8 + len(r.name)
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
	b := t.scratch[:0]
	if len(index) > 0 || r.xattr != noIndex || size > math.MaxUint16 {
		b = r.header(b, typeDir+extended).u32(r.ino.Nlink).u32(size).u32(block).u32(parent).
			u16(uint16(len(index))).u16(uint16(offset)).u32(r.xattr)
		for _, x := range index {
			b = b.u32(x.index).u32(x.start).u32(uint32(len(x.name) - 1)).str(x.name)
		}
	} else {
		b = r.header(b, typeDir).u32(block).u32(r.ino.Nlink).u16(uint16(size)).u16(uint16(offset)).u32(parent)
	}
	r.ref = t.inodes.ref()
	t.inodes.write(b)
	t.scratch = b
	return nil
}
