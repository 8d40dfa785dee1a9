package erofs

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
)

// data is file content held in memory.
type data []byte

func (d data) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(d)), nil }

var when = time.Unix(1700000000, 0)

func dir(mode uint32) *rootfs.Inode {
	return &rootfs.Inode{Type: rootfs.TypeDir, Mode: mode, ModTime: when}
}

func file(mode uint32, b []byte) *rootfs.Inode {
	ino := &rootfs.Inode{Type: rootfs.TypeRegular, Mode: mode, ModTime: when, Size: int64(len(b))}
	if len(b) > 0 {
		ino.Content = data(b)
	}
	return ino
}

// writeImage writes tr into a temp file and returns its path.
func writeImage(t testing.TB, tr *rootfs.Tree, o Options) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img.erofs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(context.Background(), tr, f, o); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func mustAdd(t testing.TB, tr *rootfs.Tree, p string, ino *rootfs.Inode) {
	t.Helper()
	if err := tr.Add(p, ino); err != nil {
		t.Fatal(err)
	}
}

func TestMinimal(t *testing.T) {
	fixtures.NeedTools(t, "fsck.erofs", "dump.erofs")
	for _, c := range []Compression{None, LZ4, LZ4HC} {
		t.Run(c.String(), func(t *testing.T) {
			tr := rootfs.NewTree(*dir(0o755))
			mustAdd(t, tr, "etc", dir(0o755))
			mustAdd(t, tr, "etc/hello", file(0o644, []byte("hello world\n")))
			big := bytes.Repeat([]byte("abcdefgh"), 50000)
			mustAdd(t, tr, "big", file(0o4755, big))
			img := writeImage(t, tr, Options{Compression: c, ModTime: when})
			t.Log(run(t, "dump.erofs", img))
			d := filepath.Join(t.TempDir(), "x")
			run(t, "fsck.erofs", "--extract="+d, img)
			for p, want := range map[string][]byte{"etc/hello": []byte("hello world\n"), "big": big} {
				b, err := os.ReadFile(filepath.Join(d, p))
				if err != nil || !bytes.Equal(b, want) {
					t.Errorf("%s = %.40q (%d bytes), %v", p, b, len(b), err)
				}
			}
		})
	}
}
