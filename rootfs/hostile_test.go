package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// TestHostileEntries: what a layer cannot make the tree hold exactly is an
// error naming the entry, never a silent truncation (issue 10's hostile
// input run).
func TestHostileEntries(t *testing.T) {
	long := strings.Repeat("n", nameMax+1)
	for _, tc := range []struct {
		name   string
		layers []tarLayer
		want   string // in the error, after the entry's name
		is     error
	}{
		{"uid 2^32 on a setuid file", one(ent{name: "bin/su", body: "s", mode: 0o4755, hdr: func(h *tar.Header) { h.Uid = 1 << 32 }}),
			"bin/su: uid 4294967296 does not fit 32 bits", nil},
		{"gid 2^40", one(ent{name: "f", hdr: func(h *tar.Header) { h.Gid = 1 << 40 }}),
			"f: gid 1099511627776 does not fit 32 bits", nil},
		{"device major 2^32", one(ent{name: "dev/x", typ: tar.TypeChar, hdr: func(h *tar.Header) { h.Devmajor = 1 << 32 }}),
			"dev/x: device major 4294967296 does not fit 32 bits", nil},
		// Names this long are elided in the middle of the one-line error.
		{"component over NAME_MAX", one(regular("a/"+long, "x")), shortName("a/"+long) + ": component", ErrNameTooLong},
		{"directory over NAME_MAX", one(dir(long + "/")), shortName(long+"/") + ": component", ErrNameTooLong},
		{"long name made through a symlink", onTop(layer(symlink(long, "l")), regular("l/x", "x")),
			"l/x: component", ErrNameTooLong},
		{"path over PATH_MAX", one(regular(strings.Repeat("d/", pathMax/2)+"f", "x")), "path of 4097 bytes", ErrNameTooLong},
		{"self-expanding symlink", onTop(layer(symlink(strings.Repeat("l/", 100)+"l", "l")), regular("l/x", "x")),
			"l/x: path of", ErrNameTooLong},
		{"volume header", one(ent{name: "vol", typ: 'V'}), `vol: unsupported tar entry type 'V'`, nil},
		{"dumpdir", one(ent{name: "d", typ: 'D'}), `d: unsupported tar entry type 'D'`, nil},
		{"vendor type", one(ent{name: "z", typ: 'Z'}), `z: unsupported tar entry type 'Z'`, nil},
		{"negative size of a symlink", layers(negativeSize(t, tar.TypeSymlink)), "neg: negative size -1", nil},
		{"negative size of a file", layers(negativeSize(t, tar.TypeReg)), "invalid tar header", tar.ErrHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Flatten(context.Background(), asLayers(tc.layers), FlattenOptions{SpoolDir: t.TempDir()})
			if err == nil || !strings.Contains(err.Error(), tc.want) || tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func asLayers(ls []tarLayer) []Layer {
	var out []Layer
	for _, l := range ls {
		out = append(out, l)
	}
	return out
}

// negativeSize is a one-entry tar whose size field says -1 in GNU's
// base-256 encoding (which tar.Writer never writes).
func negativeSize(t *testing.T, typ byte) tarLayer {
	t.Helper()
	l := layer(ent{name: "neg", typ: typ, link: "target"})
	blk := l[:512]
	for i := 124; i < 136; i++ { // ustar size field
		blk[i] = 0xff
	}
	copy(blk[148:156], "        ") // checksum is computed over spaces
	var sum int
	for _, b := range blk {
		sum += int(b)
	}
	copy(blk[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return l
}

// TestEntryTypes: types tar and containerd accept, and what Flatten makes
// of them.
func TestEntryTypes(t *testing.T) {
	tr := flatten(t,
		layer(
			// GNU tar extracts a contiguous file ('7') as a regular file.
			ent{name: "cont", typ: tar.TypeCont, body: "contiguous", hdr: func(h *tar.Header) { h.Size = 10 }},
			ent{name: "./", typ: tar.TypeDir, mode: 0o700, uid: 5},
			ent{name: "max-id", body: "m", hdr: func(h *tar.Header) { h.Uid, h.Gid = 1<<32-1, 1<<32-1 }},
		),
	)
	if ino := tr.Lookup("cont"); ino == nil || ino.Type != TypeRegular || content(t, tr, "cont") != "contiguous" {
		t.Errorf("contiguous file: %+v", ino)
	}
	// containerd ignores an entry that resolves to the root.
	if r := tr.Root(); r.Mode != 0o755 || r.UID != 0 {
		t.Errorf("root took a layer's metadata: %+v", r)
	}
	if ino := tr.Lookup("max-id"); ino.UID != 1<<32-1 || ino.GID != 1<<32-1 {
		t.Errorf("largest 32-bit ids: %d:%d", ino.UID, ino.GID)
	}
}

// TestDuplicateEntries: in one layer the later entry wins, as in
// containerd's applyNaive (an existing name is removed and replaced, and
// a directory over a directory only takes the new metadata).
func TestDuplicateEntries(t *testing.T) {
	tr := flatten(t, layer(
		regular("f", "first"), regular("f", "second"),
		dir("d/"), regular("d/child", "c"), ent{name: "d/", typ: tar.TypeDir, mode: 0o700},
		dir("e/"), regular("e/child", "c"), regular("e", "now a file"),
		regular("g", "file"), dir("g/"),
		regular("x", "x"), whiteout(".wh.x"),
	))
	if got := content(t, tr, "f"); got != "second" {
		t.Errorf("f = %q, want the later entry", got)
	}
	if d := tr.Lookup("d"); d.Mode != 0o700 || tr.Lookup("d/child") == nil {
		t.Errorf("d: mode %o, child %v; want new metadata and the child kept", d.Mode, tr.Lookup("d/child"))
	}
	if tr.Lookup("e").Type != TypeRegular || content(t, tr, "e") != "now a file" {
		t.Errorf("e: %+v", tr.Lookup("e"))
	}
	if tr.Lookup("g").Type != TypeDir {
		t.Errorf("g: %+v", tr.Lookup("g"))
	}
	// A whiteout met after its name in the same layer removes it, as
	// containerd's naive applier does.
	if tr.Lookup("x") != nil {
		t.Errorf("x survived its whiteout")
	}
}

// cancelAfter is an endless layer stream (one huge entry, then zeros)
// that cancels its context once n bytes were read, standing in for a
// SIGTERM while a layer streams.
type cancelAfter struct {
	head   []byte
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Open() (io.ReadCloser, error) { return io.NopCloser(c), nil }

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n -= int64(len(p)); c.n < 0 {
		c.cancel()
	}
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	clear(p)
	return len(p), nil
}

// TestFlattenHonoursCancel: a cancel inside a huge entry stops Flatten at
// the next read, not at the end of the entry (1 TiB here).
func TestFlattenHonoursCancel(t *testing.T) {
	var hdr bytes.Buffer
	tw := tar.NewWriter(&hdr)
	tw.WriteHeader(&tar.Header{Name: "huge", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1 << 40})
	tw.Flush()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l := &cancelAfter{head: hdr.Bytes(), n: 4 << 20, cancel: cancel}
	_, err := Flatten(ctx, []Layer{l}, FlattenOptions{SpoolDir: t.TempDir()})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

// BenchmarkFlatten: 20,000 small files in 200 directories, written in a
// second layer through a merged-usr symlink (every parent resolved through
// bin -> usr/bin), so resolution cost shows next to the spooling.
func BenchmarkFlatten(b *testing.B) {
	base := layer(dir("usr/"), dir("usr/bin/"), symlink("usr/bin", "bin"))
	var es []ent
	for d := 0; d < 200; d++ {
		es = append(es, dir(fmt.Sprintf("bin/d%03d/", d)))
		for f := 0; f < 100; f++ {
			es = append(es, regular(fmt.Sprintf("bin/d%03d/f%03d", d, f), "x"))
		}
	}
	top := layer(es...)
	b.SetBytes(int64(len(top)))
	b.ReportAllocs()
	for b.Loop() {
		tr, err := Flatten(context.Background(), []Layer{base, top}, FlattenOptions{SpoolDir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		tr.Close()
	}
}
