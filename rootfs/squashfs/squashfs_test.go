package squashfs

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// The helpers every writer's tests share (rootfs/internal/rootfstest).
type data = rt.Data

var (
	when    = rt.When
	dir     = rt.Dir
	file    = rt.File
	run     = rt.Run
	mustAdd = rt.MustAdd
	gen     = rt.Gen
	inode   = rt.Inode
	itoa    = strconv.Itoa
	mount   = func(t *testing.T, img string) string { return rt.Mount(t, img, "squashfs") }
)

// writeImage writes tr into a temp file and returns its path.
func writeImage(t testing.TB, tr *rootfs.Tree, o Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.sqfs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(context.Background(), tr, f, o); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestMinimal(t *testing.T) {
	fixtures.NeedTools(t, "unsquashfs")
	tr := rootfs.NewTree(*dir(0o755))
	mustAdd(t, tr, "etc", dir(0o755))
	mustAdd(t, tr, "etc/hello", file(0o644, []byte("hello world\n")))
	mustAdd(t, tr, "big", file(0o4755, bytes.Repeat([]byte("abcdefgh"), 50000)))
	img := writeImage(t, tr, Options{})
	t.Log(run(t, "unsquashfs", "-lln", img))
	d := filepath.Join(t.TempDir(), "x")
	run(t, "unsquashfs", "-d", d, img)
	b, err := os.ReadFile(filepath.Join(d, "etc/hello"))
	if err != nil || string(b) != "hello world\n" {
		t.Fatalf("hello = %q, %v", b, err)
	}
}
