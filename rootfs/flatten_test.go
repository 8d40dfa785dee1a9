package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// tarLayer is a layer built in code.
type tarLayer []byte

func (l tarLayer) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(l)), nil }

// ent is a tar entry for a test layer.
type ent struct {
	name, body, link string
	typ              byte
	mode             int64
	uid              int
	pax              map[string]string
	// hdr, when set, edits the header last (for values the fields
	// above cannot say).
	hdr func(*tar.Header)
}

func layer(es ...ent) tarLayer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Uid: e.uid, Gid: e.uid, Linkname: e.link,
			Size: int64(len(e.body)), ModTime: time.Unix(1700000000, 0), PAXRecords: e.pax, Devmajor: 1, Devminor: 3}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if e.hdr != nil {
			e.hdr(h)
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func flatten(t *testing.T, ls ...tarLayer) *Tree {
	t.Helper()
	var layers []Layer
	for _, l := range ls {
		layers = append(layers, l)
	}
	tr, err := Flatten(context.Background(), layers, FlattenOptions{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func content(t *testing.T, tr *Tree, p string) string {
	t.Helper()
	b, err := fs.ReadFile(tr.FS(), p)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return string(b)
}

func TestWhiteoutsAndOpaque(t *testing.T) {
	tr := flatten(t,
		layer(ent{name: "a/", typ: tar.TypeDir}, ent{name: "a/x", body: "x"}, ent{name: "a/y", body: "y"},
			ent{name: "b/", typ: tar.TypeDir}, ent{name: "b/old", body: "old"}, ent{name: "gone", body: "g"}),
		layer(ent{name: "a/.wh.x"}, ent{name: ".wh.gone"},
			// The new file comes before the opaque marker in tar order; it stays.
			ent{name: "b/new", body: "new"}, ent{name: "b/.wh..wh..opq"}),
	)
	for p, want := range map[string]bool{"a/x": false, "a/y": true, "gone": false, "b/old": false, "b/new": true, "a/.wh.x": false, "b/.wh..wh..opq": false} {
		if got := tr.Lookup(p) != nil; got != want {
			t.Errorf("%s present = %v, want %v", p, got, want)
		}
	}
}

// TestOpaqueKeepsPathsWrittenThenRemoved: what an opaque marker keeps is
// the paths the layer wrote (containerd's unpackedPaths), even when the
// layer removed what it wrote there and a parent directory was made again
// implicitly: "d" and "d/e" were written, whited out, then made as the
// parents of "d/e/f"; "low", written by no entry of the layer, goes.
func TestOpaqueKeepsPathsWrittenThenRemoved(t *testing.T) {
	tr := flatten(t,
		layer(ent{name: "o/", typ: tar.TypeDir}, ent{name: "o/low", body: "l"}),
		layer(ent{name: "o/d/", typ: tar.TypeDir}, ent{name: "o/d/e/", typ: tar.TypeDir}, ent{name: "o/.wh.d"},
			ent{name: "o/d/e/f", body: "f"}, ent{name: "o/i/j", body: "j"}, ent{name: "o/.wh..wh..opq"}),
	)
	for p, want := range map[string]bool{"o/d": true, "o/d/e": true, "o/d/e/f": true, "o/low": false, "o/i": false} {
		if got := tr.Lookup(p) != nil; got != want {
			t.Errorf("%s present = %v, want %v", p, got, want)
		}
	}
}

func TestHardlinkKeepsOldContentWhenTargetReplaced(t *testing.T) {
	tr := flatten(t,
		layer(ent{name: "orig", body: "first"}, ent{name: "link", typ: tar.TypeLink, link: "orig"}),
		layer(ent{name: "orig", body: "second"}),
	)
	if got := content(t, tr, "link"); got != "first" {
		t.Errorf("link = %q, want the old content", got)
	}
	if got := content(t, tr, "orig"); got != "second" {
		t.Errorf("orig = %q", got)
	}
	var links []Entry
	tr.Walk(func(e Entry) error {
		if e.Path == "link" || e.Path == "orig" {
			links = append(links, e)
		}
		return nil
	})
	for _, e := range links {
		if e.Inode.Nlink != 1 || e.LinkTarget != "" {
			t.Errorf("%s: nlink %d target %q, want separate inodes", e.Path, e.Inode.Nlink, e.LinkTarget)
		}
	}
}

func TestMetadata(t *testing.T) {
	tr := flatten(t, layer(
		ent{name: "bin/su", body: "s", mode: 0o4755},
		ent{name: "home/app/", typ: tar.TypeDir, mode: 0o750, uid: 1000},
		ent{name: "cap", body: "c", pax: map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "SCHILY.xattr.user.k": "v"}},
		ent{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		ent{name: "fifo", typ: tar.TypeFifo},
		ent{name: "sym", typ: tar.TypeSymlink, link: "/bin/su"},
		ent{name: "h1", body: "hh"}, ent{name: "h2", typ: tar.TypeLink, link: "h1"},
	))
	for _, tc := range []struct {
		p     string
		check func(*Inode) bool
	}{
		{"bin/su", func(i *Inode) bool { return i.Mode == 0o4755 && i.Type == TypeRegular }},
		{"bin", func(i *Inode) bool { return i.Type == TypeDir && i.Mode == 0o755 }}, // implicit parent
		{"home/app", func(i *Inode) bool { return i.UID == 1000 && i.Mode == 0o750 }},
		{"cap", func(i *Inode) bool {
			return i.Xattrs["security.capability"] == "\x01\x00\x00\x02" && i.Xattrs["user.k"] == "v"
		}},
		{"dev/null", func(i *Inode) bool { return i.Type == TypeCharDev && i.Devmajor == 1 && i.Devminor == 3 }},
		{"fifo", func(i *Inode) bool { return i.Type == TypeFIFO }},
		{"sym", func(i *Inode) bool { return i.Type == TypeSymlink && i.Linkname == "/bin/su" }},
	} {
		if ino := tr.Lookup(tc.p); ino == nil || !tc.check(ino) {
			t.Errorf("%s: %+v", tc.p, ino)
		}
	}
	tr.Walk(func(Entry) error { return nil })
	if tr.Lookup("h1") != tr.Lookup("h2") || tr.Lookup("h1").Nlink != 2 {
		t.Errorf("hardlink not shared")
	}
	if content(t, tr, "sym") != "s" {
		t.Errorf("symlink not followed inside the root")
	}
}

func TestTruncatedLayer(t *testing.T) {
	l := layer(ent{name: "f", body: string(make([]byte, 4096))})
	_, err := Flatten(context.Background(), []Layer{l[:1000]}, FlattenOptions{SpoolDir: t.TempDir()})
	if err == nil {
		t.Fatal("truncated tar accepted")
	}
}

func TestWriteTarRoundTrip(t *testing.T) {
	tr := flatten(t, layer(ent{name: "d/f", body: "data"}, ent{name: "d/g", typ: tar.TypeLink, link: "d/f"}))
	var a, b bytes.Buffer
	if err := tr.WriteTar(&a); err != nil {
		t.Fatal(err)
	}
	tr.WriteTar(&b)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("WriteTar is not deterministic")
	}
	tr2 := flatten(t, tarLayer(a.Bytes()))
	if content(t, tr2, "d/g") != "data" || tr2.Lookup("d/f") != tr2.Lookup("d/g") {
		t.Error("round trip lost the hardlink")
	}
}

// FuzzFlatten: arbitrary layers never panic, never produce a path outside
// the root, and what flattens can be written as a tar.
func FuzzFlatten(f *testing.F) {
	f.Add([]byte(layer(ent{name: "a/b", body: "x"}, ent{name: "a/.wh.b"})), []byte(layer(ent{name: "l", typ: tar.TypeLink, link: "a/b"})))
	f.Add([]byte(layer(ent{name: "s", typ: tar.TypeSymlink, link: "/"})), []byte(layer(ent{name: "s/x", body: "y"})))
	f.Fuzz(func(t *testing.T, l1, l2 []byte) {
		tr, err := Flatten(context.Background(), []Layer{tarLayer(l1), tarLayer(l2)}, FlattenOptions{})
		if err != nil {
			return
		}
		defer tr.Close()
		tr.Walk(func(e Entry) error {
			if e.Path != "." && strings.Join(splitClean(e.Path), "/") != e.Path {
				t.Fatalf("unclean path %q in tree", e.Path)
			}
			for _, el := range strings.Split(e.Path, "/") {
				if len(el) > nameMax {
					t.Fatalf("name over NAME_MAX in tree: %q", e.Path)
				}
			}
			return nil
		})
		if err := tr.WriteTar(io.Discard); err != nil {
			t.Fatalf("WriteTar: %v", err)
		}
	})
}
