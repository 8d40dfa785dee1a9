package squashfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
)

// fuzzTree turns bytes into a small tree: each step reads an opcode and
// its arguments, so every input is a valid tree.
func fuzzTree(b []byte) *rootfs.Tree {
	next := func() int {
		if len(b) == 0 {
			return 0
		}
		v := int(b[0])
		b = b[1:]
		return v
	}
	tr := rootfs.NewTree(rootfs.Inode{Mode: 0o755})
	dirs := []string{"."}
	var files []string
	names := []string{"a", "b", "c", "dd", "e.txt", "f-long-name", "g", "h"}
	for step := 0; len(b) > 0 && step < 64; step++ {
		op, parent := next()%8, dirs[next()%len(dirs)]
		name := names[next()%len(names)]
		p := name
		if parent != "." {
			p = parent + "/" + name
		}
		if tr.Lookup(p) != nil {
			continue
		}
		ino := &rootfs.Inode{Mode: uint32(next()<<4|next()) & 0o7777, UID: next() % 3 * 500, GID: next() % 2,
			ModTime: time.Unix(int64(next())<<20, 0)}
		if next()%4 == 0 {
			ino.Xattrs = map[string]string{"trusted.k" + name: string(rune('A' + next()%26))}
		}
		switch op {
		case 0, 1:
			ino.Type = rootfs.TypeDir
			dirs = append(dirs, p)
		case 2, 3, 4:
			size := next()<<8 | next()
			if op == 4 {
				size = next() % 4 * 4096
			}
			ino.Size = int64(size)
			content := gen(uint64(next()), size, next()%2 == 0)
			if next()%3 == 0 && size > 0 {
				clear(content[:size/2])
			}
			if size > 0 {
				ino.Content = data(content)
			}
			files = append(files, p)
		case 5:
			ino.Type, ino.Linkname = rootfs.TypeSymlink, names[next()%len(names)]
		case 6:
			if len(files) > 0 {
				if err := tr.Link(p, files[next()%len(files)]); err != nil {
					panic(err)
				}
			}
			continue
		case 7:
			ino.Type = []rootfs.Type{rootfs.TypeCharDev, rootfs.TypeBlockDev, rootfs.TypeFIFO}[next()%3]
			ino.Devmajor, ino.Devminor = uint32(next()), uint32(next()<<8|next())
			if ino.Type == rootfs.TypeFIFO {
				ino.Devmajor, ino.Devminor = 0, 0
			}
		}
		if err := tr.Add(p, ino); err != nil {
			panic(err)
		}
	}
	return tr
}

// FuzzRoundTrip writes random small trees with 4 KiB blocks (so small
// files span blocks and fragments) and reads them back with sqfs2tar.
func FuzzRoundTrip(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{2, 0, 1, 0o64, 0o4, 0, 0, 0, 0, 0x30, 0x10, 7, 0, 6, 0, 2, 0})
	f.Add([]byte("\x00\x00\x00\x01\xed\x00\x00\x00\x01\x02\x01\x02\x01\xa4\x01\x01\x05\x01\x40\x00\x09\x01\x00\x06\x01\x03\x00\x05\x00\x04\x00\x00\x00\x00\x00\x05\x00"))
	fixtures.NeedTools(f, "sqfs2tar")
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, p := writeFuzzImage(t, b)
		compare(t, "sqfs2tar", treeManifest(t, tr), tarManifest(t, p), fromTar)
	})
}

// writeFuzzImage writes the tree the fuzz bytes describe, with small
// blocks so little input reaches fragments and several data blocks.
func writeFuzzImage(t *testing.T, b []byte) (*rootfs.Tree, string) {
	t.Helper()
	tr := fuzzTree(b)
	p := filepath.Join(t.TempDir(), "img")
	out, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := (Format{Options{BlockSize: 4096, Workers: 2}}).Write(t.Context(), tr, out); err != nil {
		t.Fatal(err)
	}
	return tr, p
}
