package squashfs

import (
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/c2vm/c2vm/rootfs"
)

// randContent streams size pseudo-random bytes without holding them.
type randContent struct {
	seed uint64
	size int64
}

func (c randContent) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(&randReader{r: rand.NewPCG(c.seed, 7)}, c.size)), nil
}

type randReader struct {
	r   *rand.PCG
	buf [8]byte
	n   int
}

func (r *randReader) Read(p []byte) (int, error) {
	for i := range p {
		if r.n == 0 {
			binary.LittleEndian.PutUint64(r.buf[:], r.r.Uint64())
			r.n = 8
		}
		r.n--
		p[i] = r.buf[r.n]
	}
	return len(p), nil
}

// peakHeap writes tr and returns the largest heap in use seen while it
// ran.
func peakHeap(t *testing.T, tr *rootfs.Tree, o Options) uint64 {
	t.Helper()
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = Write(context.Background(), tr, f, o)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return peak
}

// TestBoundedMemory: the heap a write needs does not grow with the data:
// contents are streamed and only a few blocks per worker are in flight.
func TestBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: writes 200 MB")
	}
	tree := func(files int, size int64) *rootfs.Tree {
		tr := rootfs.NewTree(*dir(0o755))
		for i := range files {
			mustAdd(t, tr, "f"+itoa(i), &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, Size: size + int64(i),
				Content: randContent{uint64(i), size + int64(i)}})
		}
		return tr
	}
	o := Options{BlockSize: 1 << 20, Workers: 2, Compression: Gzip}
	small := peakHeap(t, tree(2, 8<<20), o)
	big := peakHeap(t, tree(4, 48<<20), o)
	t.Logf("peak heap: %d MiB for 16 MiB of data, %d MiB for 192 MiB", small>>20, big>>20)
	if big > small+24<<20 {
		t.Errorf("heap grows with the data: %d MiB for 16 MiB, %d MiB for 192 MiB", small>>20, big>>20)
	}
}
