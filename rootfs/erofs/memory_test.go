package erofs

import (
	"testing"

	"github.com/c2vm/c2vm/rootfs"

	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// TestBoundedMemory: the heap a write needs does not grow with the data:
// contents are streamed, tails go straight to their inode, and only two
// pclusters per worker are in flight.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 200 MB")
	}
	for _, c := range []Compression{LZ4, None} {
		t.Run(c.String(), func(t *testing.T) {
			w := Format{Options{Compression: c, PclusterSize: 1 << 20, Workers: 2}}
			small := rt.PeakHeap(t, w, rt.RandTree(t, 2, 8<<20))
			big := rt.PeakHeap(t, w, rt.RandTree(t, 4, 48<<20))
			t.Logf("peak heap: %d MiB for 16 MiB of data, %d MiB for 192 MiB", small>>20, big>>20)
			if big > small+24<<20 {
				t.Errorf("heap grows with the data: %d MiB for 16 MiB, %d MiB for 192 MiB", small>>20, big>>20)
			}
		})
	}
}

// TestImageBytesPerFile: what the writer holds per file besides the tree
// until the image is written: a node (80 bytes), its place in the write
// order and in its directory; no path, and no map entry unless the inode
// has several names.
func TestImageBytesPerFile(t *testing.T) {
	rt.CheckHeapPerFile(t, 124, func(tr *rootfs.Tree) (any, error) { return newImage(tr, Options{}) })
}
