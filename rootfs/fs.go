package rootfs

import (
	"io"
	"io/fs"
	"path"
	"strings"
	"time"
)

// FS returns a read-only view of the tree as an fs.FS. Symlinks are
// followed inside the tree as Flatten follows them (see resolve): an
// absolute target is taken from the tree's root, and ".." never climbs
// above it, as inside a chroot.
func (t *Tree) FS() fs.FS { return treeFS{t} }

type treeFS struct{ t *Tree }

func (f treeFS) Open(name string) (fs.File, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
	}
	_, n, err := f.t.resolve(splitClean(name), true)
	if err == nil && n == nil {
		err = fs.ErrNotExist
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	info := fileInfo{name: path.Base(name), n: n}
	if n.children != nil {
		return &dirFile{info: info}, nil
	}
	var r io.ReadCloser = io.NopCloser(strings.NewReader(""))
	if n.inode.Content != nil {
		if r, err = n.inode.Content.Open(); err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
	}
	return &file{info: info, r: r}, nil
}

type fileInfo struct {
	name string
	n    *node
}

func (i fileInfo) Name() string       { return i.name }
func (i fileInfo) Size() int64        { return i.n.inode.Size }
func (i fileInfo) ModTime() time.Time { return i.n.inode.ModTime }
func (i fileInfo) IsDir() bool        { return i.n.children != nil }
func (i fileInfo) Sys() any           { return i.n.inode }
func (i fileInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.n.inode.Mode & 0o777)
	switch i.n.inode.Type {
	case TypeDir:
		m |= fs.ModeDir
	case TypeSymlink:
		m |= fs.ModeSymlink
	case TypeCharDev:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case TypeBlockDev:
		m |= fs.ModeDevice
	case TypeFIFO:
		m |= fs.ModeNamedPipe
	}
	if i.n.inode.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if i.n.inode.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if i.n.inode.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

type file struct {
	info fileInfo
	r    io.ReadCloser
}

func (f *file) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *file) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *file) Close() error               { return f.r.Close() }

type dirFile struct {
	info fileInfo
	pos  int
}

func (d *dirFile) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *dirFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.name, Err: fs.ErrInvalid}
}
func (d *dirFile) Close() error { return nil }

// ReadDir lists entries sorted by name; symlinks are reported as such.
func (d *dirFile) ReadDir(count int) ([]fs.DirEntry, error) {
	names := sortedNames(d.info.n.children)
	var out []fs.DirEntry
	for d.pos < len(names) && (count <= 0 || len(out) < count) {
		name := names[d.pos]
		out = append(out, fs.FileInfoToDirEntry(fileInfo{name: name, n: d.info.n.children[name]}))
		d.pos++
	}
	if count > 0 && len(out) == 0 {
		return nil, io.EOF
	}
	return out, nil
}
