package erofs

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

var when = rt.When

// format is what an EROFS image keeps of a tree: mtimes to the
// nanosecond, xattrs in the namespaces it has indexes for.
var format = rt.Format{
	MTime: func(ino *rootfs.Inode) int64 { return mtime(ino).UnixNano() },
	Stores: func(name string) bool {
		_, _, ok := xattrIndex(name)
		return ok
	},
}

func writeImage(t testing.TB, tr *rootfs.Tree, o Options) string {
	t.Helper()
	return rt.WriteImage(t, Format{o}, tr)
}

// featureTree holds every kind of inode and the edge cases of the format.
func featureTree(t testing.TB) *rootfs.Tree {
	tr := rootfs.NewTree(*rt.Dir(0o755))
	add := func(p string, ino *rootfs.Inode) { t.Helper(); rt.MustAdd(t, tr, p, ino) }
	add("bin", rt.Dir(0o755))
	add("bin/busybox", rt.File(0o4755, rt.Gen(1, 300000, true)))
	add("bin/sh", &rootfs.Inode{Type: rootfs.TypeSymlink, Mode: 0o777, Linkname: "busybox", ModTime: when})
	if err := tr.Link("bin/ls", "bin/busybox"); err != nil {
		t.Fatal(err)
	}
	add("bin/ping", rt.File(0o755, rt.Gen(2, 5000, true)))
	tr.Lookup("bin/ping").Xattrs = map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
	add("bin/sg", rt.File(0o2755, rt.Gen(3, 100, true)))
	add("tmp", rt.Dir(0o1777))
	add("home", rt.Dir(0o755))
	add("home/user", rt.Inode(rootfs.TypeDir, 0o700, 1000, 1000))
	add("home/user/notes", rt.Inode(rootfs.TypeRegular, 0o600, 1000, 100))
	add("home/big-ids", rt.Inode(rootfs.TypeRegular, 0o640, 100000, 4000000000))
	add("home/nanos", rt.File(0o644, []byte("late\n")))
	tr.Lookup("home/nanos").ModTime = when.Add(1234567891 * time.Nanosecond)
	add("home/old", rt.File(0o644, []byte("old\n")))
	tr.Lookup("home/old").ModTime = time.Unix(-86400, 0)
	add("dev", rt.Dir(0o755))
	null := rt.Inode(rootfs.TypeCharDev, 0o666, 0, 0)
	null.Devmajor, null.Devminor = 1, 3
	add("dev/null", null)
	sda := rt.Inode(rootfs.TypeBlockDev, 0o660, 0, 6)
	sda.Devmajor, sda.Devminor = 259, 1048575
	add("dev/big", sda)
	add("dev/fifo", rt.Inode(rootfs.TypeFIFO, 0o644, 0, 0))
	add("dev/sock", rt.Inode(rootfs.TypeSocket, 0o755, 0, 0))
	add("data", rt.Dir(0o755))
	add("data/empty", rt.File(0o644, nil))
	add("data/random", rt.File(0o644, rt.Gen(4, 200000, false)))
	add("data/mixed", rt.File(0o644, append(rt.Gen(5, 100000, true), rt.Gen(6, 100000, false)...)))
	add("data/block", rt.File(0o644, rt.Gen(7, 4096, true)))
	add("data/twoblocks", rt.File(0o644, rt.Gen(8, 8192, false)))
	add("data/tail", rt.File(0o644, rt.Gen(9, 4095, true)))
	add("data/"+strings.Repeat("n", 255), rt.File(0o644, []byte("long name\n")))
	add("data/x", rt.File(0o644, []byte("x")))
	tr.Lookup("data/x").Xattrs = map[string]string{
		"user.empty": "", "user.big": strings.Repeat("v", 3000), "trusted.t": "1",
		"system.posix_acl_access": "\x02\x00\x00\x00\x01\x00\x06\x00\xff\xff\xff\xff\x04\x00\x04\x00\xff\xff\xff\xff\x20\x00\x04\x00\xff\xff\xff\xff",
		"system.other":            "dropped",
	}
	add("data/dir-xattr", rt.Dir(0o750))
	tr.Lookup("data/dir-xattr").Xattrs = map[string]string{"user.d": "dir"}
	add("data/link", &rootfs.Inode{Type: rootfs.TypeSymlink, Mode: 0o777, Linkname: strings.Repeat("../", 1365), ModTime: when})
	add("data/-sorts-before-dot", rt.File(0o644, []byte("-\n")))
	p := "deep"
	add(p, rt.Dir(0o755))
	for i := range 50 {
		p += "/d"
		add(p, rt.Dir(0o755))
		tr.Lookup(p).ModTime = when.Add(time.Duration(i) * time.Second)
	}
	if err := tr.Link("data/hl", "bin/busybox"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Link("data/hl-dev", "dev/null"); err != nil {
		t.Fatal(err)
	}
	return tr
}

// bigDirTree has directories of many blocks.
func bigDirTree(t testing.TB) *rootfs.Tree {
	tr := rootfs.NewTree(*rt.Dir(0o755))
	rt.MustAdd(t, tr, "wide", rt.Dir(0o755))
	for i := range 10000 {
		rt.MustAdd(t, tr, "wide/entry-with-a-longish-name-"+strconv.Itoa(i), rt.File(0o644, []byte(strconv.Itoa(i%37))))
	}
	rt.MustAdd(t, tr, "many", rt.Dir(0o755))
	for d := range 100 {
		dp := "many/dir" + strconv.Itoa(d)
		rt.MustAdd(t, tr, dp, rt.Dir(0o755))
		for f := range 30 {
			rt.MustAdd(t, tr, dp+"/f"+strconv.Itoa(f), rt.File(0o644, rt.Gen(uint64(d*50+f), (d*50+f)%9000, true)))
		}
	}
	return tr
}

// fsck checks img with fsck.erofs, decompressing every file.
func fsck(t testing.TB, img string) {
	t.Helper()
	fixtures.NeedTools(t, "fsck.erofs")
	rt.Run(t, "fsck.erofs", "--extract", img)
}

// allReaders checks img with fsck.erofs, compares its extraction and the
// kernel's mount with the tree.
func allReaders(t *testing.T, tr *rootfs.Tree, img string) {
	want := rt.TreeManifest(t, tr, format)
	t.Run("fsck", func(t *testing.T) { fsck(t, img) })
	t.Run("extract", func(t *testing.T) {
		fixtures.NeedTools(t, "fsck.erofs")
		if os.Getuid() != 0 {
			fixtures.Skip(t, "fsck.erofs keeps owners and devices only as root")
		}
		d := filepath.Join(t.TempDir(), "x")
		rt.Run(t, "fsck.erofs", "--extract="+d, "--preserve", img)
		rt.Compare(t, "fsck.erofs --extract", want, rt.DirManifest(t, d, format), fromExtract)
	})
	t.Run("mount", func(t *testing.T) {
		d := rt.Mount(t, img, "erofs")
		rt.Compare(t, "kernel", want, rt.DirManifest(t, d, format), nil)
	})
}

// fromExtract: fsck.erofs 1.5 writes each name as its own file (no
// hardlinks), no xattrs, loses setuid and setgid (it chowns after it
// chmods, which clears them: an image from mkfs.erofs loses them too), and
// directories and symlinks get the times and link counts of the file
// system they are extracted to. The mount checks all of those.
func fromExtract(e rt.Entry) rt.Entry {
	e.Nlink, e.Hardlink, e.Xattrs = 0, "", ""
	e.Mode &^= 0o6000
	if e.Kind == "dir" || e.Kind == "symlink" {
		e.MTime = 0
	}
	return e
}

func TestFeatures(t *testing.T) {
	for _, o := range []Options{
		{},
		{Compression: LZ4},
		{Compression: None},
		{Compression: LZ4HC, PclusterSize: 8192, ModTime: when},
		{Compression: LZ4, PclusterSize: 1 << 20},
	} {
		t.Run(o.Compression.String()+"-"+strconv.Itoa(o.PclusterSize), func(t *testing.T) {
			tr := featureTree(t)
			allReaders(t, tr, writeImage(t, tr, o))
		})
	}
}

func TestBigDirectories(t *testing.T) {
	tr := bigDirTree(t)
	allReaders(t, tr, writeImage(t, tr, Options{ModTime: when}))
}

func TestReproducible(t *testing.T) {
	for _, c := range []Compression{LZ4HC, None} {
		t.Run(c.String(), func(t *testing.T) {
			a, err := os.ReadFile(writeImage(t, featureTree(t), Options{Compression: c, Workers: 1}))
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(writeImage(t, featureTree(t), Options{Compression: c, Workers: 7}))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatal("two writes of the same tree differ")
			}
			if len(a)%blockSize != 0 {
				t.Errorf("image size %d is not a multiple of %d", len(a), blockSize)
			}
		})
	}
}
