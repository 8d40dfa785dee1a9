package squashfs

import (
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/rootfs"
)

const noIndex = 0xFFFFFFFF // "none" for fragment and xattr indexes

// dnode is one name in the image. It and irec are made per file, so
// they are kept small (24 and 48 bytes: a million files hold both).
type dnode struct {
	name string
	rec  *irec
}

// irec is one inode in the image; hardlinked names share it.
type irec struct {
	ino            *rootfs.Inode
	ref            uint64 // inode reference, once written
	file           *fileRec
	dir            *listing // a directory's entries; nil for other types
	num            uint32   // inode number, 1-based
	xattr          uint32
	uidIdx, gidIdx uint16
	written        bool
}

// listing is a directory's entries, sorted by name.
type listing struct{ children []*dnode }

// fileRec is where a regular file's data went.
type fileRec struct {
	path    string // first name, for errors
	ino     *rootfs.Inode
	size    int64
	start   uint64   // offset of the first block
	blocks  []uint32 // on-disk size words
	fragIdx uint32
	fragOff uint32
	sparse  uint64 // bytes in all-zero blocks
	dupOf   *fileRec
}

// emptyFile is every empty file's record: no data, no fragment. Shared,
// so that a million empty files cost no million records.
var emptyFile = &fileRec{fragIdx: noIndex}

// image is the state of one write.
type image struct {
	o      Options
	root   *dnode
	recs   map[*rootfs.Inode]*irec
	nInode uint32
	files  []*fileRec // data order: first name of each file in walk order

	ids   []uint32
	idIdx map[uint32]uint16

	xattrSets [][]byte // encoded key/value pairs, by xattr id
	xattrCnt  []uint32
	xattrIdx  map[string]uint32

	metaComp compressor
}

func newImage(t *rootfs.Tree, o Options) (*image, error) {
	im := &image{o: o, recs: map[*rootfs.Inode]*irec{}, idIdx: map[uint32]uint16{}, xattrIdx: map[string]uint32{}}
	dirs := map[string]*dnode{}
	err := t.Walk(func(e rootfs.Entry) error { return im.add(dirs, e) })
	if err != nil {
		return nil, fmt.Errorf("reading tree: %w", err)
	}
	im.number(im.root)
	return im, nil
}

func (im *image) add(dirs map[string]*dnode, e rootfs.Entry) error {
	rec, err := im.rec(e.Path, e.Inode)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	// The tree's own name string, not the walk's path, stays in memory.
	n := &dnode{name: e.Name, rec: rec}
	if e.Inode.Type == rootfs.TypeDir {
		rec.dir = &listing{}
		dirs[e.Path] = n
	}
	if e.Path == "." {
		im.root = n
		return nil
	}
	parent := dirs[path.Dir(e.Path)]
	if parent == nil {
		return fmt.Errorf("%s: parent not walked first", e.Path)
	}
	parent.rec.dir.children = append(parent.rec.dir.children, n)
	return nil
}

// rec returns the record of ino, making it on first sight.
func (im *image) rec(p string, ino *rootfs.Inode) (*irec, error) {
	if r := im.recs[ino]; r != nil {
		return r, nil
	}
	r := &irec{ino: ino, uidIdx: im.id(ino.UID), gidIdx: im.id(ino.GID), xattr: noIndex}
	if len(im.ids) > 0xFFFF {
		return nil, fmt.Errorf("more than 65536 distinct uids and gids")
	}
	var err error
	if r.xattr, err = im.xattrs(ino.Xattrs); err != nil {
		return nil, err
	}
	if ino.Type == rootfs.TypeRegular {
		r.file = emptyFile
		if ino.Size > 0 {
			if ino.Content == nil {
				return nil, fmt.Errorf("regular file of %d bytes has no content", ino.Size)
			}
			r.file = &fileRec{path: p, ino: ino, size: ino.Size, fragIdx: noIndex}
			im.files = append(im.files, r.file)
		}
	}
	// Only an inode with several names is met again.
	if ino.Nlink > 1 && ino.Type != rootfs.TypeDir {
		im.recs[ino] = r
	}
	return r, nil
}

func (im *image) id(v int) uint16 {
	u := uint32(v)
	if i, ok := im.idIdx[u]; ok {
		return i
	}
	i := uint16(len(im.ids))
	im.idIdx[u] = i
	im.ids = append(im.ids, u)
	return i
}

// xattrPrefixes are the namespaces squashfs can store, by type id
// (squashfs_fs.h: SQUASHFS_XATTR_USER, _TRUSTED, _SECURITY).
var xattrPrefixes = []string{"user.", "trusted.", "security."}

// xattrs returns the xattr id for a set, sharing identical sets. Names in
// other namespaces (system.*) cannot be stored and are dropped, as
// mksquashfs does.
func (im *image) xattrs(x map[string]string) (uint32, error) {
	names := make([]string, 0, len(x))
	for k := range x {
		names = append(names, k)
	}
	sort.Strings(names)
	var kv le
	var count uint32
	for _, k := range names {
		for typ, p := range xattrPrefixes {
			if !strings.HasPrefix(k, p) || len(k) == len(p) {
				continue
			}
			name, v := k[len(p):], x[k]
			if len(name) > 0xFFFF {
				return 0, fmt.Errorf("xattr name %q too long", k)
			}
			kv = kv.u16(uint16(typ)).u16(uint16(len(name)))
			kv = append(kv, name...)
			kv = kv.u32(uint32(len(v)))
			kv = append(kv, v...)
			count++
		}
	}
	if count == 0 {
		return noIndex, nil
	}
	key := string(kv)
	if i, ok := im.xattrIdx[key]; ok {
		return i, nil
	}
	i := uint32(len(im.xattrSets))
	im.xattrIdx[key] = i
	im.xattrSets = append(im.xattrSets, kv)
	im.xattrCnt = append(im.xattrCnt, count)
	return i, nil
}

// number gives inode numbers in the order inodes are written: a
// directory's children (subtrees first) before the directory, so the root
// is last and siblings get close numbers for the directory headers.
func (im *image) number(d *dnode) {
	for _, c := range d.rec.dir.children {
		if c.rec.dir != nil {
			im.number(c)
		} else if c.rec.num == 0 {
			im.nInode++
			c.rec.num = im.nInode
		}
	}
	im.nInode++
	d.rec.num = im.nInode
}
