package rootfs

import (
	"archive/tar"
	"fmt"
	"io"
	"sort"
)

// WriteTar writes the tree as one tar stream in Walk order: parents before
// children, a hardlink's target before the link, xattrs as PAX
// SCHILY.xattr.* records. Access and change times equal the mtime, so the
// stream depends on nothing but the tree.
func (t *Tree) WriteTar(w io.Writer) error {
	tw := tar.NewWriter(w)
	err := t.Walk(func(e Entry) error {
		h := header(e)
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("tar header %s: %w", e.Path, err)
		}
		if h.Typeflag != tar.TypeReg || e.Inode.Content == nil {
			return nil
		}
		return copyContent(tw, e)
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

func copyContent(w io.Writer, e Entry) error {
	rc, err := e.Inode.Content.Open()
	if err != nil {
		return fmt.Errorf("opening %s: %w", e.Path, err)
	}
	defer rc.Close()
	n, err := io.Copy(w, rc)
	if err != nil {
		return fmt.Errorf("copying %s: %w", e.Path, err)
	}
	if n != e.Inode.Size {
		return fmt.Errorf("copying %s: %d bytes, want %d", e.Path, n, e.Inode.Size)
	}
	return nil
}

var tarType = map[Type]byte{
	TypeRegular: tar.TypeReg, TypeDir: tar.TypeDir, TypeSymlink: tar.TypeSymlink,
	TypeCharDev: tar.TypeChar, TypeBlockDev: tar.TypeBlock, TypeFIFO: tar.TypeFifo,
}

func header(e Entry) *tar.Header {
	ino := e.Inode
	name := e.Path
	if ino.Type == TypeDir {
		name += "/"
	}
	h := &tar.Header{
		Name: name, Mode: int64(ino.Mode), Uid: int(ino.UID), Gid: int(ino.GID),
		ModTime: ino.ModTime, AccessTime: ino.ModTime, ChangeTime: ino.ModTime,
		Format: tar.FormatPAX,
	}
	if e.LinkTarget != "" {
		h.Typeflag, h.Linkname = tar.TypeLink, e.LinkTarget
		return h
	}
	h.Typeflag = tarType[ino.Type]
	switch ino.Type {
	case TypeRegular:
		h.Size = ino.Size
	case TypeSymlink:
		h.Linkname = ino.Linkname
	case TypeCharDev, TypeBlockDev:
		h.Devmajor, h.Devminor = int64(ino.Devmajor), int64(ino.Devminor)
	}
	if len(ino.Xattrs) > 0 {
		h.PAXRecords = map[string]string{}
		keys := make([]string, 0, len(ino.Xattrs))
		for k := range ino.Xattrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			h.PAXRecords["SCHILY.xattr."+k] = ino.Xattrs[k]
		}
	}
	return h
}
