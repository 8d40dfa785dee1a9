package convert

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
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

// benchConvertAll converts busybox-multi's two platforms (amd64, arm64)
// with each arch's Debian cloud kernel, jobs at a time (0: GOMAXPROCS):
// the root is small, so the time is the kernel stage's (a .deb's xz, the
// module closure), which runs on one core. It reports the process's CPU
// seconds per run (xz(1) included) beside the wall time: their ratio is
// the cores used.
func benchConvertAll(b *testing.B, jobs int) {
	img := "oci:" + filepath.Join(fixtures.Dir(b), "busybox-multi")
	kernels := ByArch{}
	for _, a := range []string{"amd64", "arm64"} {
		kernels[a] = testkernel.Deb(b, a)
	}
	dir := b.TempDir()
	cpu0 := cpuSeconds()
	b.ResetTimer()
	for b.Loop() {
		out := filepath.Join(dir, "out")
		os.RemoveAll(out)
		if _, err := ConvertAll(context.Background(), Options{Image: img, Kernel: kernels, Output: out, Jobs: jobs}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
}

func BenchmarkConvertAllSequential(b *testing.B) { benchConvertAll(b, 1) }
func BenchmarkConvertAllConcurrent(b *testing.B) { benchConvertAll(b, 0) }

// cpuSeconds is the user + system CPU time so far of this process and
// its children waited for (xz(1) decompresses a .deb's data).
func cpuSeconds() float64 {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		syscall.Getrusage(who, &ru)
		t += time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return t.Seconds()
}
