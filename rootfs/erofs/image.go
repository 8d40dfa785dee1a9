package erofs

import (
	"fmt"
	"math"
	"path"
	"sort"
	"time"

	"github.com/c2vm/c2vm/rootfs"
)

const (
	blockSize   = 4096
	slotSize    = 32   // nids count 32-byte slots from the metadata start
	superOffset = 1024 // EROFS_SUPER_OFFSET
	superSize   = 128
	compactSize = 32 // struct erofs_inode_compact
	extSize     = 64 // struct erofs_inode_extended
)

// Data layouts (erofs_fs.h: EROFS_INODE_FLAT_PLAIN...).
const (
	flatPlain      = 0
	compressedFull = 1 // one 8-byte index per 4 KiB of the file
	flatInline     = 2 // the last partial block sits right after the inode
)

// node is one inode of the image; hardlinked names share it. A million
// files hold a million nodes, so it is kept to 80 bytes: no path (pathOf
// finds one for an error), small numbers in 32 bits.
type node struct {
	ino    *rootfs.Inode
	nid    uint64
	size   int64    // i_size
	xattrs string   // inline xattr body: header and entries, or ""
	dir    []dirent // a directory's entries, ".." first until plan sorts them
	num    uint32   // i_ino: 1-based, in write order
	tail   int32    // bytes of data inline after the inode
	meta   int32    // bytes in the metadata area
	ext    bool     // extended inode
	layout uint8    // data layout
}

// dirent is one name in a directory.
type dirent struct {
	name string
	n    *node
}

// image is the state of one write.
type image struct {
	o      Options
	root   *node
	nodes  []*node // write order: first name of each inode in walk order
	byIno  map[*rootfs.Inode]*node
	metaAt int64 // first byte after the metadata area
}

func newImage(t *rootfs.Tree, o Options) (*image, error) {
	im := &image{o: o, byIno: map[*rootfs.Inode]*node{}}
	dirs := map[string]*node{}
	if err := t.Walk(func(e rootfs.Entry) error { return im.add(dirs, e) }); err != nil {
		return nil, fmt.Errorf("reading tree: %w", err)
	}
	if im.root == nil {
		return nil, fmt.Errorf("reading tree: no root")
	}
	for _, n := range im.nodes {
		if err := im.plan(n); err != nil {
			return nil, fmt.Errorf("%s: %w", im.pathOf(n), err)
		}
	}
	im.place()
	return im, nil
}

func (im *image) add(dirs map[string]*node, e rootfs.Entry) error {
	n := im.byIno[e.Inode]
	if n == nil {
		n = &node{ino: e.Inode, num: uint32(len(im.nodes) + 1)}
		im.nodes = append(im.nodes, n)
		// Only an inode with several names is met again.
		if e.Inode.Nlink > 1 && e.Inode.Type != rootfs.TypeDir {
			im.byIno[e.Inode] = n
		}
	}
	if e.Path == "." {
		n.dir = append(n.dir, dirent{"..", n})
		im.root = n
		dirs["."] = n
		return nil
	}
	parent := dirs[path.Dir(e.Path)]
	if parent == nil {
		return fmt.Errorf("%s: parent not walked first", e.Path)
	}
	if e.Inode.Type == rootfs.TypeDir {
		n.dir = append(n.dir, dirent{"..", parent})
		dirs[e.Path] = n
	}
	parent.dir = append(parent.dir, dirent{name: e.Name, n: n})
	return nil
}

// plan decides n's inode form, data layout and metadata size.
func (im *image) plan(n *node) error {
	ino := n.ino
	x, err := encodeXattrs(ino.Xattrs)
	if err != nil {
		return err
	}
	n.xattrs = string(x)
	switch ino.Type {
	case rootfs.TypeDir:
		n.dir = append(n.dir, dirent{".", n})
		sort.Slice(n.dir, func(i, j int) bool { return n.dir[i].name < n.dir[j].name })
		n.size = dirSize(n.dir)
	case rootfs.TypeSymlink:
		n.size = int64(len(ino.Linkname))
	case rootfs.TypeRegular:
		n.size = ino.Size
		if n.size > 0 && ino.Content == nil {
			return fmt.Errorf("regular file of %d bytes has no content", n.size)
		}
	}
	n.ext = ino.UID > math.MaxUint16 || ino.GID > math.MaxUint16 ||
		ino.Nlink > math.MaxUint16 || n.size > math.MaxUint32 || !mtime(ino).Equal(im.o.ModTime)
	head := compactSize
	if n.ext {
		head = extSize
	}
	head += len(n.xattrs)
	n.meta = int32(head)
	switch {
	case ino.Type == rootfs.TypeRegular && im.o.Compression != None && n.size > blockSize:
		n.layout = compressedFull
		meta := int64(indexStart(head)) + 8*lclusters(n.size)
		if meta > math.MaxInt32 {
			return fmt.Errorf("file of %d bytes too large", n.size)
		}
		n.meta = int32(meta)
	case n.size%blockSize != 0 && head+int(n.size%blockSize) <= blockSize:
		n.layout = flatInline
		n.tail = int32(n.size % blockSize)
		n.meta = int32(head) + n.tail
	default:
		n.layout = flatPlain
	}
	return nil
}

// mtime is an inode's mtime; the zero time (none known) is the Unix
// epoch, as in the squashfs writer.
func mtime(ino *rootfs.Inode) time.Time {
	if ino.ModTime.IsZero() {
		return time.Unix(0, 0)
	}
	return ino.ModTime
}

// lclusters is the number of 4 KiB logical clusters of a file.
func lclusters(size int64) int64 { return (size + blockSize - 1) / blockSize }

// indexStart is where a compressed inode's lcluster indexes begin,
// relative to the inode: after the inode and its xattrs, 8-byte aligned,
// come the 8-byte z_erofs_map_header and 8 reserved bytes
// (Z_EROFS_FULL_INDEX_ALIGN).
func indexStart(head int) int { return (head+7)&^7 + 16 }

// place gives every node its nid. The root comes first (the superblock's
// root_nid has 16 bits). A record no bigger than a block never crosses a
// block boundary, which the kernel requires of inline data ("inline data
// cross block boundary"); it goes into the first of the last few
// partly-filled blocks where it fits, as mkfs.erofs's buffer manager does,
// so boundaries waste little.
func (im *image) place() {
	start := int64(superOffset + superSize)
	if im.o.Compression != None {
		start += lz4ConfigSize
	}
	start = roundUp(start, slotSize)
	a := allocator{end: start, open: []int64{start}}
	for _, n := range im.nodes {
		n.nid = uint64(a.alloc(int64(n.meta))) / slotSize
	}
	im.metaAt = a.end
}

// allocator hands out 32-byte aligned space in the metadata area.
type allocator struct {
	open []int64 // first free byte of partly-filled blocks, oldest first
	end  int64
}

const maxOpen = 16

func (a *allocator) alloc(size int64) int64 {
	size = roundUp(size, slotSize)
	if size <= blockSize {
		for i, at := range a.open {
			if at%blockSize+size > blockSize {
				continue
			}
			a.open[i] += size
			if at == a.end {
				a.end += size
			}
			if a.open[i]%blockSize == 0 {
				a.open = append(a.open[:i], a.open[i+1:]...)
			}
			return at
		}
	}
	at := roundUp(a.end, blockSize)
	a.end = at + size
	if a.end%blockSize != 0 {
		a.open = append(a.open, a.end)
		if len(a.open) > maxOpen {
			a.open = a.open[1:]
		}
	}
	return at
}

// pathOf finds a name of n for an error message: nodes keep no path, as
// a million of them would cost a million strings. It searches the whole
// image, which only a failing write does.
func (im *image) pathOf(n *node) string {
	var find func(d *node, p string) string
	find = func(d *node, p string) string {
		for _, e := range d.dir {
			if e.name == "." || e.name == ".." {
				continue
			}
			cp := path.Join(p, e.name)
			if e.n == n {
				return cp
			}
			if e.n.ino.Type == rootfs.TypeDir {
				if found := find(e.n, cp); found != "" {
					return found
				}
			}
		}
		return ""
	}
	if n == im.root {
		return "."
	}
	return find(im.root, "")
}

func roundUp(v, to int64) int64 { return (v + to - 1) / to * to }
