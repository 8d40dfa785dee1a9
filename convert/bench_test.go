package convert

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// benchConvert converts the ~300 MB / 20k-file image to a root filesystem
// (flatten + write; no kernel) once per iteration. `make bench` runs the
// classic pipelines on the same image for comparison.
func benchConvert(b *testing.B, format string) {
	img := fixtures.Big(b)
	dir := b.TempDir()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		out := filepath.Join(dir, "out")
		os.RemoveAll(out)
		_, err := Convert(context.Background(), Options{Image: "oci:" + img, NoKernel: true, RootfsFormat: format, Output: out})
		if err != nil {
			b.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(out, "rootfs.img")); err == nil {
			b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
		}
	}
}

func BenchmarkConvertExt4(b *testing.B)     { benchConvert(b, "ext4") }
func BenchmarkConvertSquashfs(b *testing.B) { benchConvert(b, "squashfs") }
