// Package rootfstest holds what the tests of the image writers
// (rootfs/squashfs, rootfs/erofs) share: trees built in code, and
// manifests, one line per name, that the tree itself and each reader of
// an image (an extracting tool, the kernel through a mount) produce, so
// that a test compares them.
package rootfstest

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/rootfs"
)

// Data is file content held in memory.
type Data []byte

// Open implements rootfs.Content.
func (d Data) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(d)), nil }

// When is the mtime of the inodes these helpers make: one fixed clock.
var When = time.Unix(1700000000, 0)

// Dir returns a directory inode.
func Dir(mode uint32) *rootfs.Inode {
	return &rootfs.Inode{Type: rootfs.TypeDir, Mode: uint16(mode), ModTime: When}
}

// File returns a regular file holding b.
func File(mode uint32, b []byte) *rootfs.Inode {
	ino := &rootfs.Inode{Type: rootfs.TypeRegular, Mode: uint16(mode), ModTime: When, Size: int64(len(b))}
	if len(b) > 0 {
		ino.Content = Data(b)
	}
	return ino
}

// Inode returns an inode of any type with owners.
func Inode(typ rootfs.Type, mode uint32, uid, gid int) *rootfs.Inode {
	return &rootfs.Inode{Type: typ, Mode: uint16(mode), UID: uint32(uid), GID: uint32(gid), ModTime: When}
}

// MustAdd adds ino at p or fails the test.
func MustAdd(t testing.TB, tr *rootfs.Tree, p string, ino *rootfs.Inode) {
	t.Helper()
	if err := tr.Add(p, ino); err != nil {
		t.Fatal(err)
	}
}

// Run runs a tool and returns its output, failing the test on an error.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// WriteImage writes tr with w into a temp file and returns its path.
func WriteImage(t testing.TB, w rootfs.Writer, tr *rootfs.Tree) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := w.Write(context.Background(), tr, f); err != nil {
		t.Fatal(err)
	}
	return p
}

// Gen is deterministic pseudo-random content: text-like when
// compressible, random bytes otherwise.
func Gen(seed uint64, n int, compressible bool) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	if !compressible {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	words := []string{"squashfs ", "kernel ", "block ", "inode ", "fragment ", "directory\n", "the ", "of "}
	for i := 0; i < n; {
		i += copy(b[i:], words[r.IntN(len(words))])
	}
	return b
}
