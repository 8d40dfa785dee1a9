package rootfstest

import (
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

// Entry is one name as a reader sees it.
type Entry struct {
	Path, Kind       string
	Mode             uint32
	UID, GID         int
	MTime            int64 // nanoseconds, as the format keeps them
	Size             int64
	Sum, Link        string
	Major, Minor     uint32
	Nlink            uint32 // 0: not known to this reader
	Hardlink, Xattrs string
}

func (e Entry) String() string {
	return fmt.Sprintf("%s %s %04o %d:%d t=%d size=%d sum=%.12s link=%q dev=%d,%d nlink=%d hl=%q x=%s",
		e.Path, e.Kind, e.Mode, e.UID, e.GID, e.MTime, e.Size, e.Sum, e.Link, e.Major, e.Minor, e.Nlink, e.Hardlink, e.Xattrs)
}

// Kinds names the inode types in an Entry.
var Kinds = map[rootfs.Type]string{
	rootfs.TypeRegular: "file", rootfs.TypeDir: "dir", rootfs.TypeSymlink: "symlink",
	rootfs.TypeCharDev: "char", rootfs.TypeBlockDev: "block", rootfs.TypeFIFO: "fifo", rootfs.TypeSocket: "socket",
}

// Format says what an image format keeps of a tree.
type Format struct {
	MTime  func(*rootfs.Inode) int64 // the mtime a reader sees, in ns
	Stores func(xattr string) bool   // whether an xattr name is kept
}

// XattrString is the manifest form of the xattrs f keeps.
func (f Format) XattrString(x map[string]string) string {
	var kv []string
	for k, v := range x {
		if f.Stores(k) {
			kv = append(kv, fmt.Sprintf("%s=%x", k, v))
		}
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// Sum is the sha256 and length of what r holds.
func Sum(r io.Reader) (string, int64) {
	h := sha256.New()
	n, _ := io.Copy(h, r)
	return fmt.Sprintf("%x", h.Sum(nil)), n
}

// TreeManifest is what the tree says an image in format f holds.
func TreeManifest(t testing.TB, tr *rootfs.Tree, f Format) []Entry {
	t.Helper()
	var m []Entry
	err := tr.Walk(func(e rootfs.Entry) error {
		ino := e.Inode
		en := Entry{Path: e.Path, Kind: Kinds[ino.Type], Mode: uint32(ino.Mode & 0o7777), UID: int(ino.UID), GID: int(ino.GID),
			MTime: f.MTime(ino), Link: ino.Linkname, Nlink: ino.Nlink, Hardlink: e.LinkTarget, Xattrs: f.XattrString(ino.Xattrs)}
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
			en.Sum, en.Size = Sum(r)
		case rootfs.TypeCharDev, rootfs.TypeBlockDev:
			en.Major, en.Minor = ino.Devmajor, ino.Devminor
		case rootfs.TypeSymlink:
			en.Mode = 0o777
		}
		m = append(m, en)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// DirManifest reads a directory tree (a tool's extraction or a mount),
// hardlinks by inode number, xattrs that f keeps.
func DirManifest(t testing.TB, root string, f Format) []Entry {
	t.Helper()
	var m []Entry
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
		e := Entry{Path: filepath.ToSlash(rel), Mode: st.Mode & 0o7777, UID: int(st.Uid), GID: int(st.Gid),
			MTime: st.Mtim.Nano(), Nlink: uint32(st.Nlink), Xattrs: f.XattrString(listXattrs(t, p))}
		if st.Mode&syscall.S_IFMT != syscall.S_IFDIR {
			if first, ok := seen[st.Ino]; ok {
				e.Hardlink = first
			} else {
				seen[st.Ino] = e.Path
			}
		}
		if err := statKind(&e, p, &st); err != nil {
			return err
		}
		m = append(m, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func statKind(e *Entry, p string, st *unix.Stat_t) error {
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		e.Kind = "file"
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		e.Sum, e.Size = Sum(f)
	case syscall.S_IFDIR:
		e.Kind = "dir"
	case syscall.S_IFLNK:
		e.Kind, e.Mode = "symlink", 0o777
		e.Link, _ = os.Readlink(p)
	case syscall.S_IFCHR, syscall.S_IFBLK:
		e.Kind = map[bool]string{true: "char", false: "block"}[st.Mode&syscall.S_IFMT == syscall.S_IFCHR]
		e.Major, e.Minor = unix.Major(st.Rdev), unix.Minor(st.Rdev)
	case syscall.S_IFIFO:
		e.Kind = "fifo"
	case syscall.S_IFSOCK:
		e.Kind = "socket"
	}
	return nil
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

// Compare reports the first differing lines of two manifests, after
// proj (when set) keeps only what the reader knows.
func Compare(t testing.TB, reader string, want, got []Entry, proj func(Entry) Entry) {
	t.Helper()
	lines := func(es []Entry) []string {
		var s []string
		for _, e := range es {
			if proj != nil {
				e = proj(e)
			}
			s = append(s, e.String())
		}
		return s
	}
	w, g := lines(want), lines(got)
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

// Mount loop-mounts img read-only as fstype and returns the mount point.
// It skips where the kernel cannot be asked (not root, no loop devices,
// no such file system); there, a failing mount is the image's fault.
func Mount(t testing.TB, img, fstype string) string {
	t.Helper()
	if os.Getuid() != 0 {
		fixtures.Skip(t, "mounting needs root")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		fixtures.Skip(t, "no loop devices (/dev/loop-control)")
	}
	if fss, _ := os.ReadFile("/proc/filesystems"); !bytes.Contains(fss, []byte(fstype)) {
		exec.Command("modprobe", fstype).Run()
		if fss, _ := os.ReadFile("/proc/filesystems"); !bytes.Contains(fss, []byte(fstype)) {
			fixtures.Skip(t, "the kernel has no %s", fstype)
		}
	}
	d := t.TempDir()
	if out, err := exec.Command("mount", "-t", fstype, "-o", "loop,ro", img, d).CombinedOutput(); err != nil {
		dmesg, _ := exec.Command("sh", "-c", "dmesg | grep -i "+fstype+" | tail -3").Output()
		t.Fatalf("mount: %v: %s\n%s", err, out, dmesg)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", d).CombinedOutput(); err != nil {
			t.Errorf("umount: %v: %s", err, out)
		}
	})
	return d
}
