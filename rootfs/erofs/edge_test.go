package erofs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

func TestEmptyRoot(t *testing.T) {
	tr := rootfs.NewTree(rootfs.Inode{Mode: 0o700, UID: 5, GID: 7, ModTime: when})
	img := writeImage(t, tr, Options{})
	allReaders(t, tr, img)
	if st, err := os.Stat(img); err != nil || st.Size() != blockSize {
		t.Errorf("empty image: %v, %v; want one block", st.Size(), err)
	}
	tr.Root().Xattrs = map[string]string{"user.x": ""}
	allReaders(t, tr, writeImage(t, tr, Options{Compression: None}))
}

// TestHuge writes a 5 GiB file (zeros but for its tail), which needs the
// extended inode's 64-bit size and more than 65536 lcluster indexes.
func TestHuge(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: 5 GiB of zeros")
	}
	tr := rootfs.NewTree(*rt.Dir(0o755))
	const huge = 5<<30 + 12345
	tail := strings.Repeat("tail", 50000)
	rt.MustAdd(t, tr, "huge", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, ModTime: when, Size: huge,
		Content: rt.ZeroTail{Size: huge, Tail: tail}})
	rt.MustAdd(t, tr, "small", rt.File(0o644, []byte("after the huge one")))
	img := writeImage(t, tr, Options{Compression: LZ4})
	fsck(t, img)
	d := rt.Mount(t, img, "erofs")
	f, err := os.Open(filepath.Join(d, "huge"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() != huge {
		t.Fatalf("mounted huge: size %d, %v", st.Size(), err)
	}
	b := make([]byte, len(tail)+10)
	if _, err := f.ReadAt(b, huge-int64(len(b))); err != nil {
		t.Fatal(err)
	}
	if string(b[:10]) != string(make([]byte, 10)) || string(b[10:]) != tail {
		t.Errorf("mounted huge: wrong tail")
	}
	if b, err := os.ReadFile(filepath.Join(d, "small")); err != nil || string(b) != "after the huge one" {
		t.Errorf("small = %q, %v", b, err)
	}
}

func TestOptions(t *testing.T) {
	for _, o := range []Options{{PclusterSize: 4096}, {PclusterSize: 12345}, {PclusterSize: 2 << 20}, {PclusterSize: -1}} {
		t.Run("pcluster-"+strconv.Itoa(o.PclusterSize), func(t *testing.T) {
			if err := Write(context.Background(), featureTree(t), tempFile(t), o); !errors.Is(err, ErrPclusterSize) {
				t.Errorf("err = %v, want ErrPclusterSize", err)
			}
		})
	}
	if err := Write(context.Background(), featureTree(t), tempFile(t), Options{Compression: 7}); !errors.Is(err, ErrCompression) {
		t.Errorf("compression 7: err = %v, want ErrCompression", err)
	}
	for _, s := range []string{"lz4hc", "lz4", "none"} {
		if c, err := ParseCompression(s); err != nil || c.String() != s {
			t.Errorf("ParseCompression(%q) = %v, %v", s, c, err)
		}
	}
	if _, err := ParseCompression("zstd"); !errors.Is(err, ErrCompression) {
		t.Errorf("ParseCompression(zstd): err = %v, want ErrCompression", err)
	}
}

func tempFile(t *testing.T) *os.File {
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestContentErrors: a file that cannot be opened or read, or is shorter
// than its size, fails the write and names the file, whether it is
// stored as is or compressed.
func TestContentErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, c := range []struct {
		name    string
		content rootfs.Content
		size    int64
		want    error
	}{
		{"open", rt.Failing{OpenErr: boom}, 10, boom},
		{"open-compressed", rt.Failing{OpenErr: boom}, 300000, boom},
		{"read", rt.Failing{ReadErr: boom}, 300000, boom},
		{"short", rt.Data("abc"), 4, ErrShortFile},
		{"short-block", rt.Data(make([]byte, 200000)), 300000, ErrShortFile},
	} {
		for _, comp := range []Compression{LZ4HC, None} {
			t.Run(c.name+"-"+comp.String(), func(t *testing.T) {
				tr := rootfs.NewTree(*rt.Dir(0o755))
				rt.MustAdd(t, tr, "etc", rt.Dir(0o755))
				rt.MustAdd(t, tr, "etc/big", rt.File(0o644, rt.Gen(1, 500000, true)))
				rt.MustAdd(t, tr, "etc/bad", &rootfs.Inode{Type: rootfs.TypeRegular, Size: c.size, Content: c.content})
				err := Write(context.Background(), tr, tempFile(t), Options{Compression: comp, Workers: 2})
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "etc/bad") {
					t.Errorf("err = %v, want %v naming etc/bad", err, c.want)
				}
			})
		}
	}
}

// TestLongContent: a Content that gives more than Size bytes is cut at
// Size.
func TestLongContent(t *testing.T) {
	tr := rootfs.NewTree(*rt.Dir(0o755))
	rt.MustAdd(t, tr, "f", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, Size: 5, Content: rt.Data("hello, world")})
	rt.MustAdd(t, tr, "g", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, Size: 9000, Content: rt.Data(rt.Gen(1, 20000, true))})
	img := writeImage(t, tr, Options{})
	tr.Lookup("f").Content = rt.Data("hello")
	tr.Lookup("g").Content = rt.Data(rt.Gen(1, 9000, true))
	allReaders(t, tr, img)
}

// TestManyOwners: thousands of distinct uids and gids, most of which need
// extended inodes.
func TestManyOwners(t *testing.T) {
	tr := rootfs.NewTree(*rt.Dir(0o755))
	for i := range 3000 {
		rt.MustAdd(t, tr, "f"+strconv.Itoa(i), &rootfs.Inode{Type: rootfs.TypeFIFO, Mode: 0o600, UID: uint32(65000 + i), GID: uint32(200000 + i), ModTime: when})
	}
	allReaders(t, tr, writeImage(t, tr, Options{ModTime: when}))
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Write(ctx, featureTree(t), tempFile(t), Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with a cancelled context: %v", err)
	}
}

// TestXattrLimits: a value the 16-bit e_value_size cannot hold is an
// error, not a truncated attribute.
func TestXattrLimits(t *testing.T) {
	tr := rootfs.NewTree(*rt.Dir(0o755))
	rt.MustAdd(t, tr, "f", rt.File(0o644, nil))
	tr.Lookup("f").Xattrs = map[string]string{"user.big": strings.Repeat("x", 1<<16)}
	if err := Write(context.Background(), tr, tempFile(t), Options{}); !errors.Is(err, ErrXattr) || !strings.Contains(err.Error(), "f: ") {
		t.Errorf("err = %v, want ErrXattr naming f", err)
	}
}

// FuzzRoundTrip writes random small trees with 8 KiB pclusters (so small
// files are compressed, stored, inline and plain) and checks them with
// fsck.erofs's extraction.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 1, 0o64, 0o4, 0, 0, 0, 0, 0x30, 0x10, 7, 0, 6, 0, 2, 0})
	f.Add([]byte("\x00\x00\x00\x01\xed\x00\x00\x00\x01\x02\x01\x02\x01\xa4\x01\x01\x05\x01\x40\x00\x09\x01\x00\x06\x01\x03\x00\x05\x00\x04\x00\x00\x00\x00\x00\x05\x00"))
	fixtures.NeedTools(f, "fsck.erofs")
	if os.Getuid() != 0 {
		fixtures.Skip(f, "fsck.erofs keeps owners and devices only as root")
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := rt.FuzzTree(b)
		img := writeImage(t, tr, Options{PclusterSize: 8192, Workers: 2})
		d := filepath.Join(t.TempDir(), "x")
		rt.Run(t, "fsck.erofs", "--extract="+d, "--preserve", img)
		rt.Compare(t, "fsck.erofs --extract", rt.TreeManifest(t, tr, format), rt.DirManifest(t, d, format), fromExtract)
	})
}
