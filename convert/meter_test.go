package convert

import (
	"io"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
)

func TestMeterContents(t *testing.T) {
	t0 := time.Unix(0, 0)
	tree := rootfs.NewTree(rootfs.Inode{Mode: 0o755, ModTime: t0})
	a := stringContent("hello\n")
	tree.Add("a", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, Size: 6, Content: a, ModTime: t0})
	tree.Add("b", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, Size: 3, Content: stringContent("hi\n"), ModTime: t0})
	tree.Add("empty", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, ModTime: t0})
	if err := tree.Link("a-link", "a"); err != nil {
		t.Fatal(err)
	}
	rec := &fixtures.Meter{}
	restore, err := meterContents(tree, rec.Start, "rootfs test")
	if err != nil {
		t.Fatal(err)
	}
	// A hardlinked inode counts once in the total.
	if rec.What != "rootfs test" || rec.Total != 9 {
		t.Fatalf("meter got %q, %d; want \"rootfs test\", 9", rec.What, rec.Total)
	}
	read := func(p string) string {
		rc, err := tree.Lookup(p).Content.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// Reading a file twice (as squashfs's duplicate check does) must not
	// take the count past the total.
	for _, p := range []string{"a", "a", "b"} {
		read(p)
	}
	if rec.N != 9 {
		t.Errorf("meter counted %d bytes; want 9 (capped at the total)", rec.N)
	}
	if got := read("b"); got != "hi\n" {
		t.Errorf("metered content read %q", got)
	}
	restore()
	if !rec.Closed {
		t.Error("restore did not end the display")
	}
	if tree.Lookup("a").Content != a {
		t.Error("restore did not put the tree's contents back")
	}
}
