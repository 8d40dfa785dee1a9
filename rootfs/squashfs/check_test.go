package squashfs

import (
	"archive/tar"
	"bytes"
	"io"
	"os/exec"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// A manifest is one line per name: everything a reader should see. Three
// readers produce one (the tree itself, sqfs2tar's tar, a directory
// written by unsquashfs or mounted by the kernel) and tests compare them.
type entry = rt.Entry

// format is what squashfs keeps: mtimes in seconds, three xattr
// namespaces.
var format = rt.Format{MTime: func(ino *rootfs.Inode) int64 { return int64(mtime(ino)) * 1e9 }, Stores: storable}

func treeManifest(t testing.TB, tr *rootfs.Tree) []entry { return rt.TreeManifest(t, tr, format) }

func dirManifest(t testing.TB, root string) []entry { return rt.DirManifest(t, root, format) }

// storable says whether squashfs can hold an xattr name.
func storable(name string) bool {
	for _, p := range xattrPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// tarManifest reads the image with squashfs-tools-ng's sqfs2tar.
func tarManifest(t testing.TB, img string) []entry {
	t.Helper()
	fixtures.NeedTools(t, "sqfs2tar")
	cmd := exec.Command("sqfs2tar", "-r", ".", img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sqfs2tar: %v\n%s", err, stderr.Bytes())
	}
	tr := tar.NewReader(bytes.NewReader(out))
	var m []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")
		if p == "" {
			p = "."
		}
		x := map[string]string{}
		for k, v := range h.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				x[name] = v
			}
		}
		e := entry{Path: p, Mode: uint32(h.Mode) & 0o7777, UID: h.Uid, GID: h.Gid, MTime: h.ModTime.Unix() * 1e9, Xattrs: format.XattrString(x)}
		switch h.Typeflag {
		case tar.TypeReg:
			e.Kind = "file"
			e.Sum, e.Size = rt.Sum(tr)
		case tar.TypeLink:
			e.Hardlink = strings.TrimPrefix(h.Linkname, "./")
		case tar.TypeDir:
			e.Kind = "dir"
		case tar.TypeSymlink:
			e.Kind, e.Link, e.Mode = "symlink", h.Linkname, 0o777
		case tar.TypeChar, tar.TypeBlock:
			e.Kind = map[byte]string{tar.TypeChar: "char", tar.TypeBlock: "block"}[h.Typeflag]
			e.Major, e.Minor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeFifo:
			e.Kind = "fifo"
		default:
			t.Fatalf("%s: unexpected tar type %c", h.Name, h.Typeflag)
		}
		m = append(m, e)
	}
	return m
}

// project keeps the fields a reader knows; the others are zeroed in want.
type project func(e entry) entry

// fromTar: sqfs2tar drops the sizes of hardlinks, nlink, and sockets.
func fromTar(e entry) entry {
	e.Nlink = 0
	if e.Hardlink != "" {
		return entry{Path: e.Path, Hardlink: e.Hardlink}
	}
	return e
}

// compare is rt.Compare without sockets for sqfs2tar, which drops them.
func compare(t testing.TB, reader string, want, got []entry, proj project) {
	t.Helper()
	var w []entry
	for _, e := range want {
		if e.Kind != "socket" || reader != "sqfs2tar" {
			w = append(w, e)
		}
	}
	rt.Compare(t, reader, w, got, proj)
}
