package squashfs

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	"golang.org/x/sys/unix"
)

// A manifest is one line per name: everything a reader should see. Three
// readers produce one (the tree itself, sqfs2tar's tar, a directory
// written by unsquashfs or mounted by the kernel) and tests compare them.

type entry struct {
	path, kind       string
	mode             uint32
	uid, gid         int
	mtime            int64
	size             int64
	sum, link        string
	major, minor     uint32
	nlink            uint32 // 0: not known to this reader
	hardlink, xattrs string
}

func (e entry) String() string {
	return fmt.Sprintf("%s %s %04o %d:%d t=%d size=%d sum=%.12s link=%q dev=%d,%d nlink=%d hl=%q x=%s",
		e.path, e.kind, e.mode, e.uid, e.gid, e.mtime, e.size, e.sum, e.link, e.major, e.minor, e.nlink, e.hardlink, e.xattrs)
}

var kinds = map[rootfs.Type]string{
	rootfs.TypeRegular: "file", rootfs.TypeDir: "dir", rootfs.TypeSymlink: "symlink",
	rootfs.TypeCharDev: "char", rootfs.TypeBlockDev: "block", rootfs.TypeFIFO: "fifo", rootfs.TypeSocket: "socket",
}

func xattrString(x map[string]string) string {
	var kv []string
	for k, v := range x {
		if !storable(k) {
			continue
		}
		kv = append(kv, fmt.Sprintf("%s=%x", k, v))
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// storable says whether squashfs can hold an xattr name.
func storable(name string) bool {
	for _, p := range xattrPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

func sum(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

// treeManifest is what the tree says the image holds.
func treeManifest(t testing.TB, tr *rootfs.Tree) []entry {
	t.Helper()
	var m []entry
	err := tr.Walk(func(e rootfs.Entry) error {
		ino := e.Inode
		en := entry{path: e.Path, kind: kinds[ino.Type], mode: ino.Mode & 0o7777, uid: ino.UID, gid: ino.GID,
			mtime: int64(mtime(ino)), link: ino.Linkname, nlink: ino.Nlink, hardlink: e.LinkTarget, xattrs: xattrString(ino.Xattrs)}
		switch ino.Type {
		case rootfs.TypeRegular:
			r := io.Reader(bytes.NewReader(nil))
			if ino.Content != nil {
				rc, err := ino.Content.Open()
				if err != nil {
					return err
				}
				defer rc.Close()
				r = rc
			}
			en.sum, en.size = sum(r)
		case rootfs.TypeCharDev, rootfs.TypeBlockDev:
			en.major, en.minor = ino.Devmajor, ino.Devminor
		case rootfs.TypeSymlink:
			en.mode = 0o777
		}
		m = append(m, en)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
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
		e := entry{path: p, mode: uint32(h.Mode) & 0o7777, uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix(), xattrs: xattrString(x)}
		switch h.Typeflag {
		case tar.TypeReg:
			e.kind = "file"
			e.sum, e.size = sum(tr)
		case tar.TypeLink:
			e.hardlink = strings.TrimPrefix(h.Linkname, "./")
		case tar.TypeDir:
			e.kind = "dir"
		case tar.TypeSymlink:
			e.kind, e.link, e.mode = "symlink", h.Linkname, 0o777
		case tar.TypeChar, tar.TypeBlock:
			e.kind = map[byte]string{tar.TypeChar: "char", tar.TypeBlock: "block"}[h.Typeflag]
			e.major, e.minor = uint32(h.Devmajor), uint32(h.Devminor)
		case tar.TypeFifo:
			e.kind = "fifo"
		default:
			t.Fatalf("%s: unexpected tar type %c", h.Name, h.Typeflag)
		}
		m = append(m, e)
	}
	return m
}

// dirManifest reads a directory tree (unsquashfs output or a mount).
func dirManifest(t testing.TB, root string) []entry {
	t.Helper()
	var m []entry
	seen := map[uint64]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := entry{path: filepath.ToSlash(rel), mode: st.Mode & 0o7777, uid: int(st.Uid), gid: int(st.Gid),
			mtime: st.Mtim.Sec, nlink: uint32(st.Nlink), xattrs: xattrString(listXattrs(t, p))}
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			if first, ok := seen[st.Ino]; ok {
				e.hardlink = first
			} else {
				seen[st.Ino] = e.path
			}
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			e.kind = "file"
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			e.sum, e.size = sum(f)
			f.Close()
		case syscall.S_IFDIR:
			e.kind = "dir"
		case syscall.S_IFLNK:
			e.kind, e.mode = "symlink", 0o777
			e.link, _ = os.Readlink(p)
		case syscall.S_IFCHR, syscall.S_IFBLK:
			e.kind = map[bool]string{true: "char", false: "block"}[st.Mode&syscall.S_IFMT == syscall.S_IFCHR]
			e.major, e.minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
		case syscall.S_IFIFO:
			e.kind = "fifo"
		case syscall.S_IFSOCK:
			e.kind = "socket"
		}
		m = append(m, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func listXattrs(t testing.TB, p string) map[string]string {
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return nil
	}
	x := map[string]string{}
	for _, k := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v := make([]byte, 1<<16)
		vn, err := unix.Lgetxattr(p, k, v)
		if err != nil {
			t.Fatalf("getxattr %s %s: %v", p, k, err)
		}
		x[k] = string(v[:vn])
	}
	return x
}

// project keeps the fields a reader knows; the others are zeroed in want.
type project func(e entry) entry

// fromTar: sqfs2tar drops the sizes of hardlinks, nlink, and sockets.
func fromTar(e entry) entry {
	e.nlink = 0
	if e.hardlink != "" {
		return entry{path: e.path, hardlink: e.hardlink}
	}
	return e
}

func compare(t testing.TB, reader string, want, got []entry, proj project) {
	t.Helper()
	var w, g []string
	for _, e := range want {
		if proj != nil {
			e = proj(e)
		}
		if e.kind == "socket" && reader == "sqfs2tar" {
			continue
		}
		w = append(w, e.String())
	}
	for _, e := range got {
		if proj != nil {
			e = proj(e)
		}
		g = append(g, e.String())
	}
	if strings.Join(w, "\n") == strings.Join(g, "\n") {
		return
	}
	n := 0
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			t.Errorf("%s line %d:\n want %s\n  got %s", reader, i, a, b)
			if n++; n > 5 {
				break
			}
		}
	}
	t.Errorf("%s: %d entries, want %d", reader, len(g), len(w))
}
