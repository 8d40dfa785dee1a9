// Command bench feeds the squashfs writer for bench/compare.sh.
//
//	bench gen -tar FILE -dir DIR   write the generated benchmark tree as a tar and extracted
//	bench write -i TAR -o IMG      tar → rootfs.Flatten → squashfs, as c2vm convert does
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/squashfs"
	"github.com/c2vm/c2vm/rootfs/squashfs/internal/benchtree"
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
	comp := fs.String("comp", "zstd", "zstd, gzip or xz (write)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "gen":
		return gen(*tarPath, *dir)
	case "write":
		return write(*in, *out, *comp)
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

type tarLayer string

func (l tarLayer) Open() (io.ReadCloser, error) { return os.Open(string(l)) }

func write(in, out, comp string) error {
	c, err := squashfs.ParseCompression(comp)
	if err != nil {
		return err
	}
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
	if err := squashfs.Write(ctx, t, f, squashfs.Options{Compression: c}); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
