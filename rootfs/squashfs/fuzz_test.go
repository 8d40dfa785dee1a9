package squashfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// FuzzRoundTrip writes random small trees with 4 KiB blocks (so small
// files span blocks and fragments) and reads them back with sqfs2tar.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 1, 0o64, 0o4, 0, 0, 0, 0, 0x30, 0x10, 7, 0, 6, 0, 2, 0})
	f.Add([]byte("\x00\x00\x00\x01\xed\x00\x00\x00\x01\x02\x01\x02\x01\xa4\x01\x01\x05\x01\x40\x00\x09\x01\x00\x06\x01\x03\x00\x05\x00\x04\x00\x00\x00\x00\x00\x05\x00"))
	fixtures.NeedTools(f, "sqfs2tar")
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, p := writeFuzzImage(t, b)
		compare(t, "sqfs2tar", treeManifest(t, tr), tarManifest(t, p), fromTar)
	})
}

// writeFuzzImage writes the tree the fuzz bytes describe, with small
// blocks so little input reaches fragments and several data blocks.
func writeFuzzImage(t *testing.T, b []byte) (*rootfs.Tree, string) {
	t.Helper()
	tr := rt.FuzzTree(b)
	p := filepath.Join(t.TempDir(), "img")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := (Format{Options{BlockSize: 4096, Workers: 2}}).Write(t.Context(), tr, out); err != nil {
		t.Fatal(err)
	}
	return tr, p
}
