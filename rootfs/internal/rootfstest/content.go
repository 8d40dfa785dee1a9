package rootfstest

import (
	"io"
	"strings"
	"time"

	"github.com/c2vm/c2vm/rootfs"
)

// FuzzTree turns bytes into a small tree: each step reads an opcode and
// its arguments, so every input is a valid tree.
func FuzzTree(data []byte) *rootfs.Tree {
	fb := fuzzBytes(data)
	b := &fb
	next := b.next
	tr := rootfs.NewTree(rootfs.Inode{Mode: 0o755})
	dirs := []string{"."}
	var files []string
	names := []string{"a", "b", "c", "dd", "e.txt", "f-long-name", "g", "h"}
	for step := 0; len(*b) > 0 && step < 64; step++ {
		op, parent := next()%8, dirs[next()%len(dirs)]
		name := names[next()%len(names)]
		p := name
		if parent != "." {
			p = parent + "/" + name
		}
		if tr.Lookup(p) != nil {
			continue
		}
		ino := &rootfs.Inode{Mode: uint16(next()<<4|next()) & 0o7777, UID: uint32(next() % 3 * 500), GID: uint32(next() % 2),
			ModTime: time.Unix(int64(next())<<20, 0)}
		if next()%4 == 0 {
			ino.Xattrs = map[string]string{"trusted.k" + name: string(rune('A' + next()%26))}
		}
		switch op {
		case 0, 1:
			ino.Type = rootfs.TypeDir
			dirs = append(dirs, p)
		case 2, 3, 4:
			b.file(ino, op == 4)
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

// fuzzBytes are FuzzTree's input, taken a byte at a time.
type fuzzBytes []byte

// next takes a byte; 0 once all are taken.
func (b *fuzzBytes) next() int {
	if len(*b) == 0 {
		return 0
	}
	v := int((*b)[0])
	*b = (*b)[1:]
	return v
}

// file makes ino a regular file: any size, or whole blocks when blocks
// is set, sometimes with a zero first half.
func (b *fuzzBytes) file(ino *rootfs.Inode, blocks bool) {
	size := b.next()<<8 | b.next()
	if blocks {
		size = b.next() % 4 * 4096
	}
	ino.Size = int64(size)
	content := Gen(uint64(b.next()), size, b.next()%2 == 0)
	if b.next()%3 == 0 && size > 0 {
		clear(content[:size/2])
	}
	if size > 0 {
		ino.Content = Data(content)
	}
}

// ZeroTail is Size bytes of zeros ending in Tail: a big file that costs
// no memory.
type ZeroTail struct {
	Size int64
	Tail string
}

// Open implements rootfs.Content.
func (z ZeroTail) Open() (io.ReadCloser, error) {
	zeros := io.LimitReader(zeroReader{}, z.Size-int64(len(z.Tail)))
	return io.NopCloser(io.MultiReader(zeros, strings.NewReader(z.Tail))), nil
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// Failing is content whose Open fails with OpenErr, or whose reads fail
// with ReadErr after a few bytes.
type Failing struct{ OpenErr, ReadErr error }

// Open implements rootfs.Content.
func (f Failing) Open() (io.ReadCloser, error) {
	if f.OpenErr != nil {
		return nil, f.OpenErr
	}
	return io.NopCloser(io.MultiReader(strings.NewReader("some"), errReader{f.ReadErr})), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }
