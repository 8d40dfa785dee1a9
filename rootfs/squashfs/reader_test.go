package squashfs

// An independent squashfs reader for the tests, written from the format
// description (squashfs_fs.h, squashfs-tools-ng's format.adoc) and the
// kernel's lookup rules rather than from the writer. It is stricter than
// unsquashfs where the kernel is: directory headers, directory indexes,
// inode numbers, link counts and block sizes are all checked.

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/c2vm/c2vm/rootfs"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

type sqReader struct {
	b                                    []byte
	comp                                 uint16
	blockSize                            uint32
	inodes                               uint32
	inodeTab, dirTab, fragTab, idTab, xa uint64
	ids                                  []uint32
	frags                                [][2]uint64 // start, size word
	firstPath                            map[uint32]string
	seenInode                            map[uint32]bool
	out                                  []entry
	zstd                                 *zstd.Decoder
}

func (r *sqReader) fail(format string, a ...any) { panic(fmt.Errorf(format, a...)) }

func (r *sqReader) at(off uint64, n int) []byte {
	if off > uint64(len(r.b)) || uint64(len(r.b))-off < uint64(n) || n < 0 {
		r.fail("read of %d bytes at %d past the image end (%d)", n, off, len(r.b))
	}
	return r.b[off : off+uint64(n)]
}

func (r *sqReader) u16(off uint64) uint16 { return binary.LittleEndian.Uint16(r.at(off, 2)) }
func (r *sqReader) u32(off uint64) uint32 { return binary.LittleEndian.Uint32(r.at(off, 4)) }
func (r *sqReader) u64(off uint64) uint64 { return binary.LittleEndian.Uint64(r.at(off, 8)) }

func (r *sqReader) decompress(src []byte, max int) []byte {
	var out []byte
	var err error
	switch r.comp {
	case 6:
		out, err = r.zstd.DecodeAll(src, nil)
	case 1:
		var zr io.ReadCloser
		if zr, err = zlib.NewReader(bytes.NewReader(src)); err == nil {
			out, err = io.ReadAll(zr)
		}
	case 4:
		var xr *xz.Reader
		if xr, err = xz.NewReader(bytes.NewReader(src)); err == nil {
			out, err = io.ReadAll(xr)
		}
	default:
		r.fail("compressor %d", r.comp)
	}
	if err != nil {
		r.fail("decompressing: %v", err)
	}
	if len(out) > max {
		r.fail("block decompresses to %d bytes, more than %d", len(out), max)
	}
	return out
}

// metaBlock reads the metadata block at off: its data and the offset of
// the next block.
func (r *sqReader) metaBlock(off uint64) ([]byte, uint64) {
	h := r.u16(off)
	n := int(h & 0x7fff)
	if n == 0 || n > metaSize {
		r.fail("metadata block at %d has length %d", off, n)
	}
	raw := r.at(off+2, n)
	if h&0x8000 != 0 {
		return raw, off + 2 + uint64(n)
	}
	d := r.decompress(raw, metaSize)
	return d, off + 2 + uint64(n)
}

// cursor reads a metadata stream from (block, offset), as the kernel's
// squashfs_read_metadata does.
type cursor struct {
	r      *sqReader
	table  uint64
	blk    uint64 // relative to table
	off    int
	data   []byte
	next   uint64
	loaded bool
}

func (r *sqReader) cursor(table, blk uint64, off int) *cursor {
	return &cursor{r: r, table: table, blk: blk, off: off}
}

func (c *cursor) read(n int) []byte {
	var out []byte
	for n > 0 {
		if !c.loaded {
			c.data, c.next = c.r.metaBlock(c.table + c.blk)
			c.loaded = true
			if c.off > len(c.data) {
				c.r.fail("offset %d past metadata block of %d bytes", c.off, len(c.data))
			}
		}
		if c.off == len(c.data) {
			if len(c.data) != metaSize {
				c.r.fail("metadata stream runs past a short block")
			}
			c.blk, c.off, c.loaded = c.next-c.table, 0, false
			continue
		}
		k := min(n, len(c.data)-c.off)
		out = append(out, c.data[c.off:c.off+k]...)
		c.off += k
		n -= k
	}
	return out
}

// pos is where the next byte comes from, normalised like the kernel's.
func (c *cursor) pos() (uint64, int) {
	if c.loaded && c.off == len(c.data) && len(c.data) == metaSize {
		return c.next - c.table, 0
	}
	return c.blk, c.off
}

func (c *cursor) u16() uint16 { return binary.LittleEndian.Uint16(c.read(2)) }
func (c *cursor) u32() uint32 { return binary.LittleEndian.Uint32(c.read(4)) }
func (c *cursor) u64() uint64 { return binary.LittleEndian.Uint64(c.read(8)) }

// table reads n entries of size sz from a table given by its list of
// metadata block offsets at listAt.
func (r *sqReader) table(listAt uint64, n, sz int) []byte {
	if n == 0 {
		return nil
	}
	c := r.cursor(r.u64(listAt), 0, 0)
	return c.read(n * sz)
}

func readImage(img []byte) (es []entry, err error) {
	r := &sqReader{b: img, firstPath: map[uint32]string{}, seenInode: map[uint32]bool{}}
	defer func() {
		if p := recover(); p != nil {
			e, ok := p.(error)
			if !ok {
				panic(p)
			}
			err = e
		}
	}()
	if len(img)%4096 != 0 {
		r.fail("image size %d not padded to 4 KiB", len(img))
	}
	if r.u32(0) != magic {
		r.fail("bad magic")
	}
	r.inodes = r.u32(4)
	r.blockSize = r.u32(12)
	nfrag := r.u32(16)
	r.comp = r.u16(20)
	if 1<<r.u16(22) != r.blockSize {
		r.fail("block_log %d does not match block size %d", r.u16(22), r.blockSize)
	}
	flags := r.u16(24)
	nids := int(r.u16(26))
	if r.u16(28) != 4 || r.u16(30) != 0 {
		r.fail("version %d.%d", r.u16(28), r.u16(30))
	}
	root := r.u64(32)
	if used := r.u64(40); used > uint64(len(img)) || (used+4095)/4096*4096 != uint64(len(img)) {
		r.fail("bytes_used %d for an image of %d", used, len(img))
	}
	r.idTab, r.xa, r.inodeTab, r.dirTab, r.fragTab = r.u64(48), r.u64(56), r.u64(64), r.u64(72), r.u64(80)
	if r.inodeTab >= r.dirTab {
		r.fail("inode table after directory table")
	}
	if (r.xa == noTable) != (flags&flagNoXattrs != 0) {
		r.fail("xattr table %x but flags %x", r.xa, flags)
	}
	if r.comp == 6 {
		r.zstd, err = zstd.NewReader(nil, zstd.WithDecoderMaxWindow(uint64(max(r.blockSize, metaSize))))
		if err != nil {
			return nil, err
		}
		defer r.zstd.Close()
	}
	idb := r.table(r.idTab, nids, 4)
	for i := 0; i < nids; i++ {
		r.ids = append(r.ids, binary.LittleEndian.Uint32(idb[4*i:]))
	}
	if r.fragTab != noTable {
		fb := r.table(r.fragTab, int(nfrag), 16)
		for i := 0; i < int(nfrag); i++ {
			r.frags = append(r.frags, [2]uint64{binary.LittleEndian.Uint64(fb[16*i:]), uint64(binary.LittleEndian.Uint32(fb[16*i+8:]))})
		}
	}
	r.readInode(root, ".", 0, dirType)
	if len(r.seenInode) != int(r.inodes) {
		r.fail("superblock says %d inodes, found %d", r.inodes, len(r.seenInode))
	}
	for i := uint32(1); i <= r.inodes; i++ {
		if !r.seenInode[i] {
			r.fail("inode number %d unused", i)
		}
	}
	return r.out, nil
}

const dirType = typeDir

func (r *sqReader) id(i uint16) int {
	if int(i) >= len(r.ids) {
		r.fail("id index %d of %d", i, len(r.ids))
	}
	return int(r.ids[i])
}

// readInode reads the inode at ref, named p, appends its entries and
// returns its number. wantType is the directory entry's (basic) type.
func (r *sqReader) readInode(ref uint64, p string, parent uint32, wantType uint16) uint32 {
	c := r.cursor(r.inodeTab, ref>>16, int(ref&0xffff))
	typ, mode := c.u16(), c.u16()
	uid, gid := r.id(c.u16()), r.id(c.u16())
	mt := c.u32()
	num := c.u32()
	if num == 0 || num > r.inodes {
		r.fail("%s: inode number %d out of 1..%d", p, num, r.inodes)
	}
	basic := typ
	if basic > extended {
		basic -= extended
	}
	if basic != wantType {
		r.fail("%s: inode type %d, directory entry says %d", p, typ, wantType)
	}
	if mode&^0o7777 != 0 {
		r.fail("%s: mode %o has type bits", p, mode)
	}
	e := entry{Path: p, Mode: uint32(mode), UID: uid, GID: gid, MTime: int64(mt) * 1e9}
	if first, ok := r.firstPath[num]; ok {
		if basic == dirType {
			r.fail("%s: directory inode %d seen twice", p, num)
		}
		e.Hardlink = first
	} else {
		r.firstPath[num] = p
	}
	r.seenInode[num] = true
	xattr := uint32(noIndex)
	switch typ {
	case typeDir, typeDir + extended:
		var start, size, offset, nidx uint32
		if typ == typeDir {
			start, e.Nlink, size, offset = c.u32(), c.u32(), uint32(c.u16()), uint32(c.u16())
			if pi := c.u32(); pi != parent && parent != 0 {
				r.fail("%s: parent inode %d, want %d", p, pi, parent)
			}
		} else {
			e.Nlink, size, start = c.u32(), c.u32(), c.u32()
			if pi := c.u32(); pi != parent && parent != 0 {
				r.fail("%s: parent inode %d, want %d", p, pi, parent)
			}
			nidx, offset, xattr = uint32(c.u16()), uint32(c.u16()), c.u32()
		}
		e.Kind = "dir"
		var index []dirIdx
		for i := uint32(0); i < nidx; i++ {
			x := dirIdx{index: c.u32(), start: c.u32()}
			x.name = string(c.read(int(c.u32()) + 1))
			index = append(index, x)
		}
		e.Xattrs = r.xattrs(xattr)
		r.out = append(r.out, e)
		r.readDir(p, num, &e, start, offset, size, index)
		return num
	case typeFile, typeFile + extended:
		var start, size, sparse uint64
		var frag, fragOff uint32
		e.Nlink = 1
		if typ == typeFile {
			start, frag, fragOff, size = uint64(c.u32()), c.u32(), c.u32(), uint64(c.u32())
		} else {
			start, size, sparse = c.u64(), c.u64(), c.u64()
			e.Nlink, frag, fragOff, xattr = c.u32(), c.u32(), c.u32(), c.u32()
		}
		e.Kind = "file"
		bs := uint64(r.blockSize)
		nblocks := size / bs
		if frag == noIndex && size%bs != 0 {
			nblocks++
		}
		h := sha256.New()
		off := start
		var zeros uint64
		for i := uint64(0); i < nblocks; i++ {
			w := c.u32()
			want := min(bs, size-i*bs)
			if w == 0 {
				h.Write(make([]byte, want))
				zeros += want
				continue
			}
			n := uint64(w &^ uncompressedBlock)
			if n > bs || w&^(uncompressedBlock|(1<<24-1)) != 0 {
				r.fail("%s: block size word %x", p, w)
			}
			d := r.at(off, int(n))
			if w&uncompressedBlock == 0 {
				d = r.decompress(d, int(bs))
			}
			if uint64(len(d)) != want {
				r.fail("%s: block %d holds %d bytes, want %d", p, i, len(d), want)
			}
			h.Write(d)
			off += n
		}
		if sparse != 0 && sparse != zeros && typ == typeFile+extended {
			r.fail("%s: sparse %d, holes %d", p, sparse, zeros)
		}
		if frag != noIndex {
			if int(frag) >= len(r.frags) {
				r.fail("%s: fragment %d of %d", p, frag, len(r.frags))
			}
			fe := r.frags[frag]
			n := fe[1] &^ uncompressedBlock
			d := r.at(fe[0], int(n))
			if fe[1]&uncompressedBlock == 0 {
				d = r.decompress(d, int(bs))
			}
			tail := size % bs
			if tail == 0 || uint64(fragOff)+tail > uint64(len(d)) {
				r.fail("%s: fragment %d offset %d tail %d, block of %d", p, frag, fragOff, tail, len(d))
			}
			h.Write(d[fragOff : uint64(fragOff)+tail])
		}
		e.Size, e.Sum = int64(size), fmt.Sprintf("%x", h.Sum(nil))
	case typeSymlink, typeSymlink + extended:
		e.Nlink = c.u32()
		e.Kind, e.Link, e.Mode = "symlink", string(c.read(int(c.u32()))), 0o777
		if typ != typeSymlink {
			xattr = c.u32()
		}
	case typeBlock, typeChar, typeBlock + extended, typeChar + extended:
		e.Nlink = c.u32()
		rdev := c.u32()
		e.Major, e.Minor = rdev&0xfff00>>8, rdev&0xff|rdev>>12&0xfff00
		e.Kind = map[uint16]string{typeBlock: "block", typeChar: "char"}[basic]
		if typ != basic {
			xattr = c.u32()
		}
	case typeFIFO, typeSocket, typeFIFO + extended, typeSocket + extended:
		e.Nlink = c.u32()
		e.Kind = map[uint16]string{typeFIFO: "fifo", typeSocket: "socket"}[basic]
		if typ != basic {
			xattr = c.u32()
		}
	default:
		r.fail("%s: inode type %d", p, typ)
	}
	e.Xattrs = r.xattrs(xattr)
	r.out = append(r.out, e)
	return num
}

type dirIdx struct {
	index, start uint32
	name         string
}

// readDir reads a directory listing and checks what the kernel relies on:
// at most 256 entries per header, names sorted and unique, each entry's
// inode number matching its inode, the link count 2 + subdirectories,
// and every index entry pointing at a header with its name.
func (r *sqReader) readDir(p string, num uint32, self *entry, start, offset, size uint32, index []dirIdx) {
	if size < 3 {
		r.fail("%s: directory size %d", p, size)
	}
	c := r.cursor(r.dirTab, uint64(start), int(offset))
	type hdr struct {
		pos   uint32 // bytes into the listing
		blk   uint64
		off   int
		first string
	}
	var hdrs []hdr
	left := int(size) - 3
	read := 0
	var prev string
	subdirs := uint32(0)
	selfAt := len(r.out) - 1
	for left > 0 {
		blk, off := c.pos()
		h := hdr{pos: uint32(read), blk: blk, off: off}
		count := c.u32() + 1
		iblk := c.u32()
		base := c.u32()
		left -= 12
		read += 12
		if count > dirCount {
			r.fail("%s: header with %d entries", p, count)
		}
		for i := uint32(0); i < count; i++ {
			ioff := c.u16()
			delta := int16(c.u16())
			typ := c.u16()
			name := string(c.read(int(c.u16()) + 1))
			left -= 8 + len(name)
			read += 8 + len(name)
			if i == 0 {
				h.first = name
			}
			if prev != "" && name <= prev {
				r.fail("%s: entry %q after %q", p, name, prev)
			}
			if name == "." || name == ".." || bytes.ContainsAny([]byte(name), "/\x00") {
				r.fail("%s: bad name %q", p, name)
			}
			prev = name
			cp := name
			if p != "." {
				cp = p + "/" + name
			}
			got := r.readInode(uint64(iblk)<<16|uint64(ioff), cp, num, typ)
			if want := uint32(int64(base) + int64(delta)); got != want {
				r.fail("%s: entry says inode %d, inode says %d", cp, want, got)
			}
			if typ == typeDir {
				subdirs++
			}
		}
		hdrs = append(hdrs, h)
		if left < 0 {
			r.fail("%s: listing overruns its size", p)
		}
	}
	if self.Nlink != 2+subdirs {
		r.fail("%s: nlink %d, want %d", p, self.Nlink, 2+subdirs)
	}
	r.out[selfAt].Nlink = self.Nlink
	// The kernel's get_dir_index_using_name: it starts from the last index
	// entry whose name is <= the wanted one, at block start, offset
	// (index + directory offset) % 8 KiB, and must find a header there.
	prevName := ""
	for _, x := range index {
		if x.name <= prevName {
			r.fail("%s: index names out of order: %q after %q", p, x.name, prevName)
		}
		prevName = x.name
		i := sort.Search(len(hdrs), func(i int) bool { return hdrs[i].pos >= x.index })
		if i == len(hdrs) || hdrs[i].pos != x.index {
			r.fail("%s: index %d points inside a header's entries", p, x.index)
		}
		h := hdrs[i]
		if uint64(x.start) != h.blk || int((x.index+offset)%metaSize) != h.off || h.first != x.name {
			r.fail("%s: index {%d %d %q} but header at block %d offset %d named %q",
				p, x.index, x.start, x.name, h.blk, h.off, h.first)
		}
	}
}

func (r *sqReader) xattrs(id uint32) string {
	if id == noIndex {
		return ""
	}
	if r.xa == noTable {
		r.fail("xattr id %d without an xattr table", id)
	}
	kvStart := r.u64(r.xa)
	n := r.u32(r.xa + 8)
	if id >= n {
		r.fail("xattr id %d of %d", id, n)
	}
	idc := r.cursor(r.u64(r.xa+16), 0, 0)
	idc.read(int(id) * 16)
	ref, count, size := idc.u64(), idc.u32(), idc.u32()
	c := r.cursor(kvStart, ref>>16, int(ref&0xffff))
	x := map[string]string{}
	total := 0
	for i := uint32(0); i < count; i++ {
		typ := c.u16()
		name := string(c.read(int(c.u16())))
		vsize := c.u32()
		total += 8 + len(name)
		if typ&0xff > 2 {
			r.fail("xattr type %d", typ)
		}
		v := string(c.read(int(vsize)))
		total += int(vsize)
		if typ&0x100 != 0 {
			r.fail("out-of-line xattr values are not written")
		}
		x[xattrPrefixes[typ&0xff]+name] = v
	}
	if total != int(size) {
		r.fail("xattr set %d: size %d, read %d", id, size, total)
	}
	return format.XattrString(x)
}

// checkRead reads img with the test reader and compares it with the tree.
func checkRead(t testing.TB, tr *rootfs.Tree, img string) {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	got, err := readImage(b)
	if err != nil {
		t.Fatalf("reading %s: %v", filepath.Base(img), err)
	}
	want := treeManifest(t, tr)
	for i := range want {
		if want[i].Kind == "symlink" {
			want[i].Mode = 0o777
		}
	}
	compare(t, "reader", want, got, nil)
}

func TestReader(t *testing.T) {
	for _, c := range []Compression{Zstd, Gzip, XZ} {
		t.Run(c.String(), func(t *testing.T) {
			tr := featureTree(t)
			checkRead(t, tr, writeImage(t, tr, Options{Compression: c}))
		})
	}
	t.Run("big", func(t *testing.T) {
		tr := bigDirTree(t)
		checkRead(t, tr, writeImage(t, tr, Options{}))
	})
	t.Run("4k-blocks", func(t *testing.T) {
		tr := featureTree(t)
		checkRead(t, tr, writeImage(t, tr, Options{BlockSize: 4096}))
	})
	t.Run("1m-blocks", func(t *testing.T) {
		tr := featureTree(t)
		checkRead(t, tr, writeImage(t, tr, Options{BlockSize: 1 << 20, Compression: XZ}))
	})
}

// FuzzReader writes the trees FuzzRoundTrip makes and reads them back
// with the test reader, which needs no tools and checks the kernel's
// invariants.
func FuzzReader(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 1, 0o64, 0o4, 0, 0, 0, 0, 0x30, 0x10, 7, 0, 6, 0, 2, 0})
	f.Add([]byte("\x00\x00\x00\x01\xed\x00\x00\x00\x01\x02\x01\x02\x01\xa4\x01\x01\x05\x01\x40\x00\x09\x01\x00\x06\x01\x03\x00\x05\x00\x04\x00\x00\x00\x00\x00\x05\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, p := writeFuzzImage(t, b)
		checkRead(t, tr, p)
	})
}
