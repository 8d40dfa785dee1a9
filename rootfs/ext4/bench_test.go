package ext4_test

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/c2vm/c2vm/internal/cache"
	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/ext4"
)

// benchFiles and benchBytes shape the generated layer: ~300 MB in 20k files,
// like a mid-sized distro image.
const (
	benchFiles = 20000
	benchBytes = 300 << 20
)

// gzLayer is a rootfs.Layer reading a gzip-compressed tar file.
type gzLayer string

func (l gzLayer) Open() (io.ReadCloser, error) {
	f, err := os.Open(string(l))
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{zr, f}, nil
}

// benchLayer generates the layer once (deterministic: fixed PRNG seed) and
// caches it under $C2VM_CACHE/bench.
func benchLayer(b *testing.B) string {
	dir, err := cache.Dir()
	if err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(dir, "bench", fmt.Sprintf("flatten-%d-%d.tar.gz", benchFiles, benchBytes))
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		b.Fatal(err)
	}
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	rng := rand.New(rand.NewPCG(1, 2))
	mtime := time.Unix(1700000000, 0)
	buf := make([]byte, 2*benchBytes/benchFiles)
	for i := range benchFiles {
		if i%100 == 0 {
			hdr := &tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("d%03d/", i/100), Mode: 0o755, ModTime: mtime}
			if err := tw.WriteHeader(hdr); err != nil {
				b.Fatal(err)
			}
		}
		n := rng.IntN(len(buf))
		// Half random (incompressible), half zeros, like real binaries.
		for j := 0; j < n/2; j++ {
			buf[j] = byte(rng.Uint32())
		}
		clear(buf[n/2 : n])
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("d%03d/f%05d", i/100, i), Mode: 0o644, Size: int64(n), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkFlattenExt4 measures flatten + ext4 of the generated layer.
func BenchmarkFlattenExt4(b *testing.B) {
	layer := benchLayer(b)
	dir := b.TempDir()
	b.SetBytes(benchBytes)
	for b.Loop() {
		t, err := rootfs.Flatten(context.Background(), []rootfs.Layer{gzLayer(layer)}, rootfs.FlattenOptions{SpoolDir: dir})
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dir, "rootfs.ext4"))
		if err != nil {
			b.Fatal(err)
		}
		if err := ext4.Write(context.Background(), t, out, ext4.Options{}); err != nil {
			b.Fatal(err)
		}
		out.Close()
		t.Close()
	}
}

// BenchmarkWriteData measures seeding a 1 GiB data disk with the generated
// layer (mke2fs + debugfs), against BenchmarkFlattenExt4's tar2ext4.
func BenchmarkWriteData(b *testing.B) {
	layer := benchLayer(b)
	dir := b.TempDir()
	t, err := rootfs.Flatten(context.Background(), []rootfs.Layer{gzLayer(layer)}, rootfs.FlattenOptions{SpoolDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	b.SetBytes(benchBytes)
	for b.Loop() {
		p := filepath.Join(dir, "data.img")
		os.Remove(p)
		if err := ext4.WriteData(context.Background(), t, p, ext4.DataOptions{Label: "c2vm-vol-0", TempDir: dir}); err != nil {
			b.Fatal(err)
		}
	}
}
