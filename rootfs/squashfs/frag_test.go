package squashfs

import (
	"bytes"
	"io"
	"os"
	"slices"
	"testing"

	"github.com/c2vm/c2vm/rootfs"
)

// seekable is content whose reader can seek, as the layer spool's can.
type seekable []byte

func (s seekable) Open() (io.ReadCloser, error) {
	return struct {
		*bytes.Reader
		io.Closer
	}{bytes.NewReader(s), io.NopCloser(nil)}, nil
}

// TestSimilarTailsShareFragments: tails of the same kind are packed side
// by side, so zstd, which sees one fragment block at a time, finds their
// likeness. In walk order every fragment block here would hold one
// random tail and one copy of the text, and the text would be stored 20
// times.
func TestSimilarTailsShareFragments(t *testing.T) {
	tr := rootfs.NewTree(*dir(0o755))
	text := gen(1, 6<<10, false)
	var random int64
	for i := range 20 {
		d := "d" + itoa(100+i)
		mustAdd(t, tr, d, dir(0o755))
		big := file(0o644, nil) // a full block and a 100 KiB tail
		big.Content, big.Size = seekable(gen(uint64(10+i), 228<<10, false)), 228<<10
		mustAdd(t, tr, d+"/a.bin", big)
		mustAdd(t, tr, d+"/z.txt", file(0o644, append(slices.Clip(text), itoa(i)...)))
		random += big.Size
	}
	img := checkAll(t, tr, Options{})
	st, err := os.Stat(img)
	if err != nil {
		t.Fatal(err)
	}
	if limit := random + 32<<10; st.Size() > limit {
		t.Errorf("image of %d bytes, want at most %d: similar tails compressed apart", st.Size(), limit)
	}
}

func TestSortTails(t *testing.T) {
	mk := func(p string, head string, size int) tail {
		tl := tail{f: &fileRec{path: p}, size: size}
		copy(tl.head[:], head)
		return tl
	}
	ts := []tail{
		mk("b/z.mo", "\xde\x12\x04\x95\x00\x00\x00\x00\x10", 900),
		mk("lib/libc.so.6", "\x7fELF", 500),
		mk("a/z.mo", "\xde\x12\x04\x95\x00\x00\x00\x00\x20", 800),
		mk("bin/ls", "\x7fELF", 700),
		mk("c/y.mo", "\xde\x12\x04\x95\x00\x00\x00\x00\x10", 100),
		mk("etc/.profile", "# ~/.profile", 50),
		mk("bin/cat", "\x7fELF", 700),
	}
	sortTails(ts)
	var got []string
	for _, tl := range ts {
		got = append(got, tl.f.path)
	}
	// By extension (".profile" has none; libc.so.6 has ".6"), first
	// bytes, size, walk order.
	want := []string{"etc/.profile", "bin/ls", "bin/cat", "lib/libc.so.6", "c/y.mo", "b/z.mo", "a/z.mo"}
	if !slices.Equal(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}
