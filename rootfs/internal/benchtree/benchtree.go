// Package benchtree builds the benchmark tree: a deterministic mix of
// compressible text, incompressible data and duplicate files, in the
// shape of a container root filesystem (many small files, a few large).
// Contents are generated when opened, so the tree costs no memory.
package benchtree

import (
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/c2vm/c2vm/rootfs"
)

// Shape sizes the tree; the zero value is the default 20,000 files and
// 300 MB.
type Shape struct {
	Files int
	Bytes int64
}

// when is every inode's mtime: one fixed clock.
var when = time.Unix(1700000000, 0)

type kind uint8

const (
	text kind = iota
	random
)

// Tree returns the benchmark tree for s.
func Tree(s Shape) *rootfs.Tree {
	if s.Files == 0 {
		s.Files = 20000
	}
	if s.Bytes == 0 {
		s.Bytes = 300e6
	}
	r := rand.New(rand.NewPCG(1, 2))
	sizes := make([]float64, s.Files)
	var total float64
	for i := range sizes {
		lo, hi := 6.0, 16.0 // most files 64 B .. 64 KiB
		if r.IntN(10) == 0 {
			lo, hi = 16, 21 // some 64 KiB .. 2 MiB
		}
		sizes[i] = math.Exp2(lo + r.Float64()*(hi-lo))
		total += sizes[i]
	}
	scale := float64(s.Bytes) / total
	tr := rootfs.NewTree(rootfs.Inode{Mode: 0o755, ModTime: when})
	var dirs []string
	for a := range 20 {
		d := "usr" + strconv.Itoa(a)
		mustAdd(tr, d, &rootfs.Inode{Type: rootfs.TypeDir, Mode: 0o755, ModTime: when})
		for b := range 20 {
			mustAdd(tr, d+"/lib"+strconv.Itoa(b), &rootfs.Inode{Type: rootfs.TypeDir, Mode: 0o755, ModTime: when})
			dirs = append(dirs, d+"/lib"+strconv.Itoa(b))
		}
	}
	var made []gen
	for i, sz := range sizes {
		g := gen{seed: uint64(i), size: int64(sz * scale), kind: text}
		switch v := r.IntN(100); {
		case v < 5 && len(made) > 0:
			g = made[r.IntN(len(made))]
		case v < 35:
			g.kind = random
		}
		made = append(made, g)
		p := dirs[r.IntN(len(dirs))] + "/file" + strconv.Itoa(i)
		mustAdd(tr, p, &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644, ModTime: when, Size: g.size, Content: g})
	}
	return tr
}

func mustAdd(tr *rootfs.Tree, p string, ino *rootfs.Inode) {
	if err := tr.Add(p, ino); err != nil {
		panic(err)
	}
}

// gen is generated file content.
type gen struct {
	seed uint64
	size int64
	kind kind
}

func (g gen) Open() (io.ReadCloser, error) {
	var r io.Reader
	if g.kind == random {
		var key [32]byte
		key[0], key[1], key[2] = byte(g.seed), byte(g.seed>>8), byte(g.seed>>16)
		r = rand.NewChaCha8(key)
	} else {
		r = &textReader{r: rand.New(rand.NewPCG(g.seed, 7))}
	}
	return io.NopCloser(io.LimitReader(r, g.size)), nil
}

// vocabulary is a fixed list of pseudo-words, so text compresses about
// as well as source code or documentation does.
var vocabulary = func() []string {
	r := rand.New(rand.NewPCG(3, 4))
	w := make([]string, 4096)
	for i := range w {
		b := make([]byte, 2+r.IntN(9))
		for j := range b {
			b[j] = "etaoinshrdlcumwfgypbvkjxqz_"[int(math.Min(26, r.ExpFloat64()*6))]
		}
		w[i] = string(b)
	}
	return w
}()

type textReader struct {
	r   *rand.Rand
	buf []byte
}

func (t *textReader) Read(p []byte) (int, error) {
	for len(t.buf) < len(p) {
		w := vocabulary[int(math.Min(4095, t.r.ExpFloat64()*400))]
		t.buf = append(t.buf, w...)
		if t.r.IntN(12) == 0 {
			t.buf = append(t.buf, '\n')
		} else {
			t.buf = append(t.buf, ' ')
		}
	}
	n := copy(p, t.buf)
	t.buf = append(t.buf[:0], t.buf[n:]...)
	return n, nil
}
