package squashfs

import (
	"fmt"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/rootfs"
)

const noIndex = 0xFFFFFFFF // "none" for fragment and xattr indexes

// irec is one inode being written: made when the walk meets it and
// dropped once encoded, except for an inode with several names, whose
// reference and number the later names need.
type irec struct {
	ino            *rootfs.Inode
	ref            uint64 // inode reference, once written
	file           *fileRec
	num            uint32 // inode number, 1-based
	xattr          uint32
	uidIdx, gidIdx uint16
}

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

// image is the state of one write. It keeps nothing per name: the tree is
// walked twice, once to find the files with data and count each
// directory's inodes, and once, after the data, to write the inode and
// directory tables as the walk goes (see writeInodes).
type image struct {
	o       Options
	tree    *rootfs.Tree
	files   []*fileRec               // data order: first name of each file with data, in walk order
	subtree map[*rootfs.Inode]uint32 // a directory's count of inodes below it
	nInode  uint32
	rootRef uint64

	ids   []uint32
	idIdx map[uint32]uint16

	xattrSets [][]byte // encoded key/value pairs, by xattr id
	xattrCnt  []uint32
	xattrIdx  map[string]uint32

	metaComp compressor
}

func newImage(t *rootfs.Tree, o Options) (*image, error) {
	im := &image{o: o, tree: t, subtree: map[*rootfs.Inode]uint32{}, idIdx: map[uint32]uint16{}, xattrIdx: map[string]uint32{}}
	w := &dirWalk{leave: func(d, parent *frame) error {
		im.subtree[d.rec.ino] = d.count
		if parent == nil {
			im.nInode = d.count + 1
		} else {
			parent.count += d.count + 1
		}
		return nil
	}}
	err := t.Walk(func(e rootfs.Entry) error {
		parent, err := w.to(e)
		switch {
		case err != nil:
			return err
		case e.Inode.Type == rootfs.TypeDir:
			w.push(e, irec{ino: e.Inode})
		case e.LinkTarget == "":
			parent.count++
			return im.addFile(e)
		}
		return nil
	})
	if err == nil {
		err = w.finish()
	}
	if err != nil {
		return nil, fmt.Errorf("reading tree: %w", err)
	}
	return im, nil
}

// addFile records a regular file that has data, in walk order.
func (im *image) addFile(e rootfs.Entry) error {
	ino := e.Inode
	if ino.Type != rootfs.TypeRegular || ino.Size == 0 {
		return nil
	}
	if ino.Content == nil {
		return fmt.Errorf("%s: regular file of %d bytes has no content", e.Path, ino.Size)
	}
	im.files = append(im.files, &fileRec{path: e.Path, ino: ino, size: ino.Size, fragIdx: noIndex})
	return nil
}

// rec makes the record of an inode met for the first time; file is the
// next file with data in walk order (what addFile recorded).
func (im *image) rec(ino *rootfs.Inode, file func() (*fileRec, error)) (irec, error) {
	r := irec{ino: ino, uidIdx: im.id(ino.UID), gidIdx: im.id(ino.GID), xattr: noIndex}
	if len(im.ids) > 0xFFFF {
		return r, fmt.Errorf("more than 65536 distinct uids and gids")
	}
	var err error
	if r.xattr, err = im.xattrs(ino.Xattrs); err != nil {
		return r, err
	}
	if ino.Type == rootfs.TypeRegular {
		r.file = emptyFile
		if ino.Size > 0 {
			r.file, err = file()
		}
	}
	return r, err
}

func (im *image) id(u uint32) uint16 {
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
