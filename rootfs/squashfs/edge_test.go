package squashfs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/rootfs"
	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// checkAll runs every reader that needs no root on the image of tr.
func checkAll(t *testing.T, tr *rootfs.Tree, o Options) string {
	t.Helper()
	img := writeImage(t, tr, o)
	checkRead(t, tr, img)
	if _, err := os.Stat("/usr/bin/unsquashfs"); err == nil || os.Getenv("C2VM_E2E") == "1" {
		checkListing(t, tr, img)
	}
	return img
}

func TestEmptyRoot(t *testing.T) {
	tr := rootfs.NewTree(rootfs.Inode{Mode: 0o700, UID: 5, GID: 7, ModTime: when})
	img := checkAll(t, tr, Options{})
	tr.Root().Xattrs = map[string]string{"user.x": ""}
	checkAll(t, tr, Options{Compression: Gzip})
	if st, err := os.Stat(img); err != nil || st.Size() != 4096 {
		t.Errorf("empty image: %v, %v; want one 4 KiB page", st.Size(), err)
	}
}

// TestHuge writes a 5 GiB file (sparse but for its tail), which needs the
// extended file inode's 64-bit size, and a block start past 4 GiB.
func TestHuge(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 5 GiB of zeros")
	}
	tr := rootfs.NewTree(*dir(0o755))
	const huge = 5<<30 + 12345
	mustAdd(t, tr, "huge", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, ModTime: when, Size: huge,
		Content: rt.ZeroTail{Size: huge, Tail: strings.Repeat("tail", 50000)}})
	mustAdd(t, tr, "small", file(0o644, []byte("after the huge one")))
	img := checkAll(t, tr, Options{})
	// The kernel reads it too: the size, a hole and the tail.
	d := mount(t, img)
	f, err := os.Open(filepath.Join(d, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() != huge {
		t.Fatalf("mounted huge: size %d, %v", st.Size(), err)
	}
	b := make([]byte, 200000+10)
	if _, err := f.ReadAt(b, huge-int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if string(b[:10]) != string(make([]byte, 10)) || string(b[10:]) != strings.Repeat("tail", 50000) {
		t.Errorf("mounted huge: wrong tail")
	}
}

func TestBlockSizes(t *testing.T) {
	for _, bs := range []int{4096, 8192, 64 << 10, 1 << 20} {
		t.Run(itoa(bs), func(t *testing.T) {
			tr := featureTree(t)
			checkAll(t, tr, Options{BlockSize: bs, Workers: 3})
		})
	}
	for _, bs := range []int{-1, 1000, 4095, 2 << 20, 3 << 12} {
		t.Run("bad-"+strconv.Itoa(bs), func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "img"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if err := Write(context.Background(), featureTree(t), f, Options{BlockSize: bs}); !errors.Is(err, ErrBlockSize) {
				t.Errorf("err = %v, want ErrBlockSize", err)
			}
		})
	}
}

// TestContentErrors: a file that cannot be opened or read, or is shorter
// than its size, fails the write and names the file.
func TestContentErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name    string
		content rootfs.Content
		size    int64
		want    error
	}{
		{"open", rt.Failing{OpenErr: boom}, 10, boom},
		{"read", rt.Failing{ReadErr: boom}, 300000, boom},
		{"short", data("abc"), 4, ErrShortFile},
		{"short-block", data(make([]byte, 200000)), 300000, ErrShortFile},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, dup := range []bool{false, true} {
				t.Run("dup="+strconv.FormatBool(dup), func(t *testing.T) {
					tr := rootfs.NewTree(*dir(0o755))
					mustAdd(t, tr, "etc", dir(0o755))
					mustAdd(t, tr, "etc/bad", &rootfs.Inode{Type: rootfs.TypeRegular, Size: c.size, Content: c.content})
					if dup { // same size: read for dedup first
						mustAdd(t, tr, "etc/other", &rootfs.Inode{Type: rootfs.TypeRegular, Size: c.size, Content: rt.ZeroTail{Size: c.size}})
					}
					f, err := os.Create(filepath.Join(t.TempDir(), "img"))
					if err != nil {
						t.Fatal(err)
					}
					defer f.Close()
					err = Write(context.Background(), tr, f, Options{})
					if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "etc/bad") {
						t.Errorf("err = %v, want %v naming etc/bad", err, c.want)
					}
				})
			}
		})
	}
}

// TestLongContent: a Content that gives more than Size bytes is cut at
// Size.
func TestLongContent(t *testing.T) {
	tr := rootfs.NewTree(*dir(0o755))
	mustAdd(t, tr, "f", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, Size: 5, Content: data("hello, world")})
	img := writeImage(t, tr, Options{})
	b, _ := os.ReadFile(img)
	es, err := readImage(b)
	if err != nil {
		t.Fatal(err)
	}
	want := entry{Path: "f", Kind: "file", Mode: 0o644, Size: 5, Sum: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", Nlink: 1}
	if len(es) != 2 || es[1] != want {
		t.Errorf("got %v, want %v", es, want)
	}
}

// TestManyOwners: thousands of distinct uids and gids fill several id
// table blocks.
func TestManyOwners(t *testing.T) {
	tr := rootfs.NewTree(*dir(0o755))
	for i := range 3000 {
		mustAdd(t, tr, "f"+itoa(i), &rootfs.Inode{Type: rootfs.TypeFIFO, Mode: 0o600, UID: uint32(100000 + i), GID: uint32(200000 + i), ModTime: when})
	}
	checkAll(t, tr, Options{})
}

// TestDedupSize: identical files, whole blocks or fragment tails, are
// stored once.
func TestDedupSize(t *testing.T) {
	tr := rootfs.NewTree(*dir(0o755))
	big := gen(11, 1<<20+777, false)
	tail := gen(12, 3000, false)
	for i := range 10 {
		mustAdd(t, tr, "big"+itoa(i), file(0o644, big))
	}
	for i := range 1000 {
		mustAdd(t, tr, "tail"+itoa(i), file(0o644, tail))
	}
	img := checkAll(t, tr, Options{})
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if limit := int64(len(big) + len(tail) + 64<<10); st.Size() > limit {
		t.Errorf("image of %d bytes, want at most %d: duplicates stored twice", st.Size(), limit)
	}
}
