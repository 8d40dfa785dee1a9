package squashfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
)

// featureTree holds every kind of inode and the edge cases of the format.
func featureTree(t testing.TB) *rootfs.Tree {
	const bs = 128 << 10
	tr := rootfs.NewTree(*dir(0o755))
	add := func(p string, ino *rootfs.Inode) { t.Helper(); mustAdd(t, tr, p, ino) }
	add("bin", dir(0o755))
	add("bin/busybox", file(0o4755, gen(1, 300000, true)))
	add("bin/sh", &rootfs.Inode{Type: rootfs.TypeSymlink, Mode: 0o777, Linkname: "busybox", ModTime: when})
	if err := tr.Link("bin/ls", "bin/busybox"); err != nil {
		t.Fatal(err)
	}
	add("bin/ping", file(0o755, gen(2, 5000, true)))
	tr.Lookup("bin/ping").Xattrs = map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}
	add("bin/sg", file(0o2755, gen(3, 100, true)))
	add("tmp", dir(0o1777))
	add("home", dir(0o755))
	add("home/user", inode(rootfs.TypeDir, 0o700, 1000, 1000))
	add("home/user/notes", inode(rootfs.TypeRegular, 0o600, 1000, 100))
	ino := tr.Lookup("home/user/notes")
	ino.Size, ino.Content = 3, data("abc")
	ino.Xattrs = map[string]string{"user.comment": "hi", "trusted.overlay.opaque": "y", "system.posix_acl_access": "dropped"}
	tr.Lookup("home").Xattrs = map[string]string{"user.dir": "yes"}
	add("dev", dir(0o755))
	dev := func(p string, typ rootfs.Type, maj, min uint32) {
		ino := inode(typ, 0o660, 0, 6)
		ino.Devmajor, ino.Devminor = maj, min
		add(p, ino)
	}
	dev("dev/null", rootfs.TypeCharDev, 1, 3)
	dev("dev/sda", rootfs.TypeBlockDev, 8, 0)
	dev("dev/nvme", rootfs.TypeBlockDev, 259, 70000)
	add("dev/fifo", inode(rootfs.TypeFIFO, 0o644, 0, 0))
	add("dev/sock", inode(rootfs.TypeSocket, 0o755, 0, 0))
	// user.* is only allowed on files and directories (xattr(7)).
	tr.Lookup("dev/fifo").Xattrs = map[string]string{"trusted.a": "b"}
	lnk := &rootfs.Inode{Type: rootfs.TypeSymlink, Mode: 0o777, Linkname: "/bin/busybox", ModTime: when,
		Xattrs: map[string]string{"security.selinux": "system_u:object_r:bin_t"}}
	add("dev/xlink", lnk)
	add("data", dir(0o755))
	add("data/empty", file(0o644, nil))
	add("data/oneblock", file(0o644, gen(4, bs, false)))
	add("data/tail", file(0o644, gen(5, bs+bs/2, false)))
	add("data/twoblocks", file(0o644, gen(6, 2*bs, true)))
	sparse := gen(7, 3*bs+10, false)
	clear(sparse[bs : 2*bs])
	add("data/sparse", file(0o644, sparse))
	add("data/zeros", file(0o644, make([]byte, 2*bs+100)))
	add("data/tinyzeros", file(0o644, make([]byte, 10)))
	for i := range 20 {
		add("data/dup"+string(rune('a'+i)), file(0o644, gen(8, 200000, false)))
	}
	add("data/dupsmall1", file(0o644, []byte("same")))
	add("data/dupsmall2", file(0o600, []byte("same")))
	add("data/"+strings.Repeat("n", 255), file(0o644, []byte("long name")))
	add("emptydir", dir(0o555))
	p := "deep"
	add(p, dir(0o755))
	for i := range 100 {
		p += "/d"
		add(p, dir(0o755))
		tr.Lookup(p).ModTime = when.Add(time.Duration(i) * time.Second)
	}
	add(p+"/bottom", file(0o644, []byte("bottom\n")))
	if err := tr.Link("data/hl", "bin/busybox"); err != nil {
		t.Fatal(err)
	}
	return tr
}

// bigDirTree has the directory shapes that need several metadata blocks
// and directory indexes.
func bigDirTree(t testing.TB) *rootfs.Tree {
	tr := rootfs.NewTree(*dir(0o755))
	mustAdd(t, tr, "wide", dir(0o755))
	for i := range 10000 {
		mustAdd(t, tr, "wide/entry-with-a-longish-name-"+itoa(i), file(0o644, []byte(itoa(i%37))))
	}
	mustAdd(t, tr, "many", dir(0o755))
	for d := range 300 {
		dp := "many/dir" + itoa(d)
		mustAdd(t, tr, dp, dir(0o755))
		for f := range 50 {
			mustAdd(t, tr, dp+"/f"+itoa(f), file(0o644, gen(uint64(d*50+f), (d*50+f)%3000, true)))
		}
	}
	return tr
}

func allReaders(t *testing.T, tr *rootfs.Tree, img string) {
	want := treeManifest(t, tr)
	t.Run("unsquashfs-lln", func(t *testing.T) {
		fixtures.NeedTools(t, "unsquashfs")
		out := run(t, "unsquashfs", "-lln", img)
		if n := strings.Count(out, "\n"); n != len(want) {
			t.Errorf("unsquashfs -lln lists %d lines, want %d", n, len(want))
		}
	})
	t.Run("sqfs2tar", func(t *testing.T) {
		compare(t, "sqfs2tar", want, tarManifest(t, img), fromTar)
	})
	t.Run("unsquashfs-d", func(t *testing.T) {
		fixtures.NeedTools(t, "unsquashfs")
		if os.Getuid() != 0 {
			fixtures.Skip(t, "unsquashfs keeps owners and devices only as root")
		}
		d := filepath.Join(t.TempDir(), "x")
		run(t, "unsquashfs", "-no-progress", "-d", d, img)
		got := dirManifest(t, d)
		compare(t, "unsquashfs -d", want, got, fromExtract)
	})
	t.Run("mount", func(t *testing.T) {
		d := mount(t, img)
		compare(t, "kernel", want, dirManifest(t, d), nil)
	})
}

// fromExtract: unsquashfs gives no directory or symlink times and makes
// directories' link counts its own file system's.
func fromExtract(e entry) entry {
	if e.Kind == "dir" {
		e.Nlink = 0
	}
	if e.Kind == "symlink" {
		e.MTime = 0
	}
	return e
}

func TestFeatures(t *testing.T) {
	for _, o := range []Options{
		{Compression: Zstd},
		{Compression: Gzip},
		{Compression: XZ},
		{Compression: Zstd, BlockSize: 4096},
		{Compression: XZ, BlockSize: 1 << 20},
	} {
		t.Run(fmt.Sprintf("%v-%d", o.Compression, o.BlockSize), func(t *testing.T) {
			tr := featureTree(t)
			allReaders(t, tr, writeImage(t, tr, o))
		})
	}
}

func TestBigDirectories(t *testing.T) {
	tr := bigDirTree(t)
	allReaders(t, tr, writeImage(t, tr, Options{}))
}

func TestReproducible(t *testing.T) {
	tr := featureTree(t)
	a, err := os.ReadFile(writeImage(t, tr, Options{Workers: 1}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(writeImage(t, tr, Options{Workers: 7}))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("two writes of the same tree differ")
	}
	if len(a)%4096 != 0 {
		t.Errorf("image size %d is not a multiple of 4096", len(a))
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(ctx, featureTree(t), f, Options{}); err == nil {
		t.Fatal("Write with a cancelled context succeeded")
	}
}

// TestSparse: all-zero blocks take no space, and a file made only of
// them costs its inode.
func TestSparse(t *testing.T) {
	tr := rootfs.NewTree(*dir(0o755))
	mustAdd(t, tr, "zeros", file(0o644, make([]byte, 64<<20)))
	img := writeImage(t, tr, Options{})
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > 8192 {
		t.Errorf("image of a 64 MiB sparse file is %d bytes", st.Size())
	}
	compare(t, "sqfs2tar", treeManifest(t, tr), tarManifest(t, img), fromTar)
}

// short is content that ends before its inode's Size.
type short struct{}

func (short) Open() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("abc")), nil }

func TestErrors(t *testing.T) {
	tr := func(size int64, unique bool) *rootfs.Tree {
		tr := rootfs.NewTree(*dir(0o755))
		mustAdd(t, tr, "f", &rootfs.Inode{Type: rootfs.TypeRegular, Size: size, Content: short{}})
		if !unique { // same size: read by the duplicate finder first
			mustAdd(t, tr, "g", &rootfs.Inode{Type: rootfs.TypeRegular, Size: size, Content: short{}})
		}
		return tr
	}
	for _, c := range []struct {
		name string
		tree *rootfs.Tree
		o    Options
		want error
	}{
		{"short block", tr(200000, true), Options{}, ErrShortFile},
		{"short fragment", tr(10, true), Options{}, ErrShortFile},
		{"short duplicate", tr(10, false), Options{}, ErrShortFile},
		{"block size", tr(0, true), Options{BlockSize: 3000}, ErrBlockSize},
		{"compression", tr(0, true), Options{Compression: 9}, ErrCompression},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			err = Write(context.Background(), c.tree, f, c.o)
			if !errors.Is(err, c.want) {
				t.Fatalf("Write = %v, want %v", err, c.want)
			}
			if c.want == ErrShortFile && !strings.Contains(err.Error(), "f: ") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseCompression(t *testing.T) {
	for _, c := range []Compression{Zstd, Gzip, XZ} {
		t.Run(c.String(), func(t *testing.T) {
			if got, err := ParseCompression(c.String()); err != nil || got != c {
				t.Errorf("ParseCompression(%q) = %v, %v", c, got, err)
			}
		})
	}
	if _, err := ParseCompression("lz4"); !errors.Is(err, ErrCompression) {
		t.Errorf("ParseCompression(lz4) = %v", err)
	}
}
