package erofs

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/rootfs/internal/benchtree"
)

// BenchmarkWrite writes the generated ~300 MB / 20,000-file tree (text,
// random data, 5% duplicates), as squashfs's BenchmarkWrite does.
// bench/compare.sh sets it against mkfs.erofs.
func BenchmarkWrite(b *testing.B) {
	tr := benchtree.Tree(benchtree.Shape{})
	p := filepath.Join(b.TempDir(), "img")
	for _, c := range []Compression{LZ4HC, LZ4, None} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(300e6)
			for b.Loop() {
				f, err := os.Create(p)
				if err != nil {
					b.Fatal(err)
				}
				if err := Write(context.Background(), tr, f, Options{Compression: c}); err != nil {
					b.Fatal(err)
				}
				st, _ := f.Stat()
				b.ReportMetric(float64(st.Size())/1e6, "MB-out")
				f.Close()
			}
		})
	}
}
