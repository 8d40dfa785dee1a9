package rootfstest

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/internal/benchtree"
)

// RandContent streams Size pseudo-random bytes without holding them.
type RandContent struct {
	Seed uint64
	Size int64
}

// Open implements rootfs.Content.
func (c RandContent) Open() (io.ReadCloser, error) {
	return io.NopCloser(io.LimitReader(&randReader{r: rand.NewPCG(c.Seed, 7)}, c.Size)), nil
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

// RandTree has files files of about size random bytes each.
func RandTree(t testing.TB, files int, size int64) *rootfs.Tree {
	tr := rootfs.NewTree(*Dir(0o755))
	for i := range files {
		MustAdd(t, tr, "f"+strconv.Itoa(i), &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, Size: size + int64(i),
			Content: RandContent{uint64(i), size + int64(i)}})
	}
	return tr
}

// PeakHeap writes tr with w and returns the largest heap in use seen
// while it ran.
func PeakHeap(t testing.TB, w rootfs.Writer, tr *rootfs.Tree) uint64 {
	t.Helper()
	runtime.GC()
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
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
	})
	f, err := os.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	err = w.Write(context.Background(), tr, f)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return peak
}

// HeapGrowth returns how many bytes more the heap holds, garbage
// collected, while what make returns is still alive: the memory a
// structure costs, counted by the allocator, not by a clock.
func HeapGrowth(make func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := make()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// EmptyFiles flattens a tar of n empty files, 1000 to a directory (the
// benchmark's per-file shape, benchtree.WriteEmpty).
func EmptyFiles(t testing.TB, n int) *rootfs.Tree {
	t.Helper()
	var buf bytes.Buffer
	if err := benchtree.WriteEmpty(&buf, n); err != nil {
		t.Fatal(err)
	}
	tr, err := rootfs.Flatten(context.Background(), []rootfs.Layer{Data(buf.Bytes())}, rootfs.FlattenOptions{SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// CheckHeapPerFile fails t when what build makes of a tree of 50,000
// empty files holds more than limit bytes of heap per file (the tree
// itself not counted): a writer's per-file cost, which a million-file
// image pays a million times.
func CheckHeapPerFile(t *testing.T, limit uint64, build func(*rootfs.Tree) (any, error)) {
	t.Helper()
	const n = 50000
	tr := EmptyFiles(t, n)
	var err error
	per := HeapGrowth(func() any {
		var v any
		v, err = build(tr)
		return v
	}) / n
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes per empty file", per)
	if per > limit {
		t.Errorf("%d bytes of heap per empty file, want at most %d", per, limit)
	}
}
