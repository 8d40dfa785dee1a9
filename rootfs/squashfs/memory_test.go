package squashfs

import (
	"testing"

	"github.com/c2vm/c2vm/rootfs"

	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// TestBoundedMemory: the heap a write needs does not grow with the data:
// contents are streamed and only a few blocks per worker are in flight.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 200 MB")
	}
	w := Format{Options{BlockSize: 1 << 20, Workers: 2, Compression: Gzip}}
	small := rt.PeakHeap(t, w, rt.RandTree(t, 2, 8<<20))
	big := rt.PeakHeap(t, w, rt.RandTree(t, 4, 48<<20))
	t.Logf("peak heap: %d MiB for 16 MiB of data, %d MiB for 192 MiB", small>>20, big>>20)
	if big > small+24<<20 {
		t.Errorf("heap grows with the data: %d MiB for 16 MiB, %d MiB for 192 MiB", small>>20, big>>20)
	}
}

// TestImageBytesPerFile: the writer holds nothing per empty file from
// the first walk to the second (a record only per file with data); the
// second walk holds only the listings of the directories it is in.
func TestImageBytesPerFile(t *testing.T) {
	o, _ := Options{}.normalize()
	rt.CheckHeapPerFile(t, 4, func(tr *rootfs.Tree) (any, error) { return newImage(tr, o) })
}
