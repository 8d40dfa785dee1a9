package ext4

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

type bytesContent []byte

func (b bytesContent) Open() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }

func tree() *rootfs.Tree {
	t0 := time.Unix(1700000000, 0)
	t := rootfs.NewTree(rootfs.Inode{Mode: 0o755, ModTime: t0})
	t.Add("etc", &rootfs.Inode{Type: rootfs.TypeDir, Mode: 0o755, ModTime: t0})
	f := &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o4750, UID: 1000, GID: 1001, Size: 5, Content: bytesContent("hello"), ModTime: t0,
		Xattrs: map[string]string{"user.k": "v", "security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}}
	t.Add("etc/f", f)
	t.Link("etc/g", "etc/f")
	t.Add("etc/dev", &rootfs.Inode{Type: rootfs.TypeBlockDev, Mode: 0o660, Devmajor: 8, Devminor: 1, ModTime: t0})
	t.Add("etc/ln", &rootfs.Inode{Type: rootfs.TypeSymlink, Mode: 0o777, Linkname: "../f", ModTime: t0})
	return t
}

func write(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := Write(context.Background(), tree(), f, Options{}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWriteCheckedByE2fsprogs checks the image with e2fsprogs, not with
// our own reading of it: e2fsck finds it consistent and debugfs sees every
// attribute the tree gave (setuid, owners, hardlink count, device number,
// inline symlink, xattrs, hardlinked content).
func TestWriteCheckedByE2fsprogs(t *testing.T) {
	fixtures.NeedTools(t, "e2fsck", "debugfs")
	img := write(t)
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		req   string
		wants []string
	}{
		{"stat /etc/f", []string{"Mode:  04750", "User:  1000", "Group:  1001", "Links: 2", "Size: 5"}},
		{"stat /etc/dev", []string{"block special", "08:01"}},
		{"stat /etc/ln", []string{"Fast link dest: \"../f\""}},
		{"ea_list /etc/f", []string{"user.k", "security.capability"}},
		{"cat /etc/g", []string{"hello"}},
	} {
		t.Run(tc.req, func(t *testing.T) {
			out, _ := exec.Command("debugfs", "-R", tc.req, img).CombinedOutput()
			for _, w := range tc.wants {
				if !strings.Contains(string(out), w) {
					t.Errorf("no %q in\n%s", w, out)
				}
			}
		})
	}
}

// TestReproducible: two writes of one tree are the same bytes.
func TestReproducible(t *testing.T) {
	a, err := os.ReadFile(write(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(write(t))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("two writes differ")
	}
}
