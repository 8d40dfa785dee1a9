// Command bench feeds the image writers for rootfs/squashfs/bench/compare.sh
// and rootfs/erofs/bench/compare.sh.
//
//	bench gen -tar FILE -dir DIR                write the generated benchmark tree as a tar and extracted
//	bench empty -n N -tar FILE                  write a tar of N empty files, 1000 to a directory
//	bench write [-format F] [-comp C] [-cpuprofile P] [-peakprofile P] -i TAR -o IMG   tar → rootfs.Flatten → squashfs (zstd, gzip, xz)
//	                                            or erofs (lz4hc, lz4, none) or ext4, as c2vm convert does
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/erofs"
	"github.com/c2vm/c2vm/rootfs/ext4"
	"github.com/c2vm/c2vm/rootfs/internal/benchtree"
	"github.com/c2vm/c2vm/rootfs/squashfs"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: bench gen|write ...")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	tarPath := fs.String("tar", "", "tar to write (gen)")
	dir := fs.String("dir", "", "directory to extract into (gen)")
	in := fs.String("i", "", "input tar (write)")
	out := fs.String("o", "", "output image (write)")
	format := fs.String("format", "squashfs", "squashfs, erofs or ext4 (write)")
	n := fs.Int("n", 1000000, "files (empty)")
	prof := fs.String("cpuprofile", "", "write a CPU profile of the command to this file")
	memProf := fs.String("memprofile", "", "write an allocation profile of the command to this file")
	peakProf := fs.String("peakprofile", "", "write a heap profile taken when the heap in use peaked to this file")
	comp := fs.String("comp", "", "squashfs: zstd (default), gzip or xz; erofs: lz4hc (default), lz4 or none (write)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *prof != "" {
		stop, err := cpuProfile(*prof)
		if err != nil {
			return err
		}
		defer stop()
	}
	if *memProf != "" {
		defer writeAllocs(*memProf)
	}
	if *peakProf != "" {
		defer peakHeap(*peakProf)()
	}
	switch args[0] {
	case "gen":
		return gen(*tarPath, *dir)
	case "empty":
		return empty(*tarPath, *n)
	case "write":
		w, err := writer(*format, *comp)
		if err != nil {
			return err
		}
		return write(*in, *out, w)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func gen(tarPath, dir string) error {
	t := benchtree.Tree(benchtree.Shape{})
	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	if err := t.WriteTar(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return extract(t, dir)
}

// empty writes a tar of n empty files in directories of 1000, streamed:
// the per-file cost of the tree, with no data to compress.
func empty(tarPath string, n int) error {
	f, err := os.Create(tarPath)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := benchtree.WriteEmpty(bw, n); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

// extract writes the tree's directories and regular files under dir
// (all the benchmark tree has).
func extract(t *rootfs.Tree, dir string) error {
	return t.Walk(func(e rootfs.Entry) error {
		p := filepath.Join(dir, filepath.FromSlash(e.Path))
		if e.Inode.Type == rootfs.TypeDir {
			return os.MkdirAll(p, 0o755)
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		if e.Inode.Content != nil {
			r, err := e.Inode.Content.Open()
			if err != nil {
				return err
			}
			_, err = io.Copy(f, r)
			r.Close()
			if err != nil {
				return err
			}
		}
		return f.Close()
	})
}

// cpuProfile starts a CPU profile written to p (go tool pprof reads it)
// and returns what stops it.
func cpuProfile(p string) (func(), error) {
	f, err := os.Create(p)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// writeAllocs writes the allocation profile (go tool pprof -sample_index
// alloc_space) after a collection, as the profile only counts up to the
// last completed one; failing to is reported, not fatal.
func writeAllocs(p string) {
	runtime.GC()
	writeProfile(p, "allocs")
}

// writeProfile writes the named runtime/pprof profile to p; failing to is
// reported, not fatal.
func writeProfile(p, name string) {
	f, err := os.Create(p)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		f.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: memory profile:", err)
	}
}

// peakHeap watches the heap and, each time it has grown by a quarter over
// the last live size, collects garbage (the heap profile only shows what
// the last completed collection saw) and writes a heap profile to p if
// more is live than ever before: p ends up showing what was live at
// about the peak. It returns what stops the watch.
func peakHeap(p string) func() {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		var live, best uint64
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if runtime.ReadMemStats(&ms); ms.HeapAlloc < live+live/4 {
				continue
			}
			runtime.GC()
			runtime.ReadMemStats(&ms)
			if live = ms.HeapAlloc; live > best {
				best = live
				writeProfile(p, "heap")
			}
		}
	}()
	return func() { close(stop); <-done }
}

type tarLayer string

func (l tarLayer) Open() (io.ReadCloser, error) { return os.Open(string(l)) }

// writer returns the format's writer with compression comp ("" for the
// format's default).
func writer(format, comp string) (rootfs.Writer, error) {
	switch format {
	case "squashfs":
		var o squashfs.Options
		if comp != "" {
			c, err := squashfs.ParseCompression(comp)
			if err != nil {
				return nil, err
			}
			o.Compression = c
		}
		return squashfs.Format{Options: o}, nil
	case "erofs":
		var o erofs.Options
		if comp != "" {
			c, err := erofs.ParseCompression(comp)
			if err != nil {
				return nil, err
			}
			o.Compression = c
		}
		return erofs.Format{Options: o}, nil
	case "ext4":
		return ext4.Format{}, nil
	}
	return nil, fmt.Errorf("unknown format %q", format)
}

func write(in, out string, w rootfs.Writer) error {
	ctx := context.Background()
	t, err := rootfs.Flatten(ctx, []rootfs.Layer{tarLayer(in)}, rootfs.FlattenOptions{SpoolDir: filepath.Dir(out)})
	if err != nil {
		return err
	}
	defer t.Close()
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := w.Write(ctx, t, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
