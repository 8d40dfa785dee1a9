package rootfs_test

import (
	"path"
	"runtime"
	"testing"

	"github.com/c2vm/c2vm/rootfs"

	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// TestTreeBytesPerFile: the tree's cost per file, which a million-file
// image pays a million times (issue 24: 1M empty files within 400 MiB
// for the whole write). Measured by the heap, not by a clock: an Inode
// (96 bytes), a node (24), its map slot and its name.
func TestTreeBytesPerFile(t *testing.T) {
	const n = 50000
	var tr any
	grow := rt.HeapGrowth(func() any { tr = rt.EmptyFiles(t, n); return tr })
	per := grow / n
	t.Logf("%d bytes per empty file", per)
	if per > 192 {
		t.Errorf("the tree holds %d bytes per empty file, want at most 192", per)
	}
}

// TestWalkAllocsPerFile: a walk allocates little per file (its path: the
// sorted names of each depth are reused) and, in particular, does not
// remember every file's path to find hardlinks: only inodes with several
// names.
// Each entry's Name is its path's last element.
func TestWalkAllocsPerFile(t *testing.T) {
	const n = 50000
	tr := rt.EmptyFiles(t, n)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var badName string
	if err := tr.Walk(func(e rootfs.Entry) error {
		if e.Name != path.Base(e.Path) && badName == "" {
			badName = e.Path + " named " + e.Name
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if badName != "" {
		t.Errorf("entry %s", badName)
	}
	per := (after.TotalAlloc - before.TotalAlloc) / n
	t.Logf("%d bytes allocated per empty file", per)
	if per > 24 {
		t.Errorf("Walk allocates %d bytes per empty file, want at most 24", per)
	}
}
