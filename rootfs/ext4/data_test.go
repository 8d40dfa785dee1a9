package ext4

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
)

// aclUser1000Read is a POSIX ACL as the xattr syscalls and tar carry it
// (include/uapi/linux/posix_acl_xattr.h: version 2, then tag, perm, id):
// user::rwx user:1000:r group::r mask::r other::-.
const aclUser1000Read = "\x02\x00\x00\x00" +
	"\x01\x00\x07\x00\xff\xff\xff\xff" + "\x02\x00\x04\x00\xe8\x03\x00\x00" + "\x04\x00\x04\x00\xff\xff\xff\xff" +
	"\x10\x00\x04\x00\xff\xff\xff\xff" + "\x20\x00\x00\x00\xff\xff\xff\xff"

// seedTree is a volume's content: a non-root owner, setuid, xattrs, a
// hardlink, special files, and names debugfs's parser could misread.
func seedTree() *rootfs.Tree {
	t0 := time.Unix(1700000000, 0)
	t := rootfs.NewTree(rootfs.Inode{Mode: 0o750, UID: 1000, GID: 1000, ModTime: t0})
	add := func(p string, ino rootfs.Inode) {
		ino.ModTime = t0
		if err := t.Add(p, &ino); err != nil {
			panic(err)
		}
	}
	add("f", rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o4640, UID: 1000, GID: 1001, Size: 5, Content: bytesContent("hello"),
		Xattrs: map[string]string{"user.k": "v\x00\n", "system.posix_acl_access": aclUser1000Read, "security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}})
	t.Link("g", "f")
	add("-x", rootfs.Inode{Type: rootfs.TypeDir, Mode: 0o700, UID: 1000})
	add(`-x/q"uote sp#ace\`, rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o600, UID: 1000})
	add("-x/-p", rootfs.Inode{Type: rootfs.TypeFIFO, Mode: 0o644})
	add("-x/null", rootfs.Inode{Type: rootfs.TypeCharDev, Mode: 0o666, Devmajor: 1, Devminor: 3})
	add("ln", rootfs.Inode{Type: rootfs.TypeSymlink, Mode: 0o777, Linkname: `../a "b"`, UID: 1000})
	add("lost+found", rootfs.Inode{Type: rootfs.TypeDir, Mode: 0o700, UID: 1000})
	return t
}

func writeData(t *testing.T, tree *rootfs.Tree, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "data-0.img")
	o := DataOptions{Size: 64 << 20, Label: "c2vm-vol-0", Seed: "sha256:abc\x00/data", Epoch: time.Unix(1700000000, 0), TempDir: t.TempDir()}
	if err := WriteData(context.Background(), tree, p, o); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWriteDataCheckedByE2fsprogs: the data disk passes e2fsck -fn, debugfs
// sees the seed as the tree has it, and most of the disk is free.
func TestWriteDataCheckedByE2fsprogs(t *testing.T) {
	fixtures.NeedTools(t, "mke2fs", "debugfs", "e2fsck", "dumpe2fs")
	img := writeData(t, seedTree(), t.TempDir())
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		req   string
		wants []string
	}{
		{"stat /", []string{"Mode:  0750", "User:  1000", "Group:  1000", "mtime: 0x6553f100"}},
		{"stat /f", []string{"Mode:  04640", "User:  1000", "Group:  1001", "Links: 2", "Size: 5", "ctime: 0x6553f100", "crtime: 0x6553f100"}},
		// The ACL in ext4's on-disk form (fs/ext4/acl.h: version 1, short
		// entries without an id): debugfs converts it as the kernel would.
		{"ea_list /f", []string{"user.k (3) = 76 00 0a", "security.capability (20)", "system.posix_acl_access (28) = 01 00 00 00 01 00 07 00 02 00 04 00 e8 03 00 00"}},
		{"cat /g", []string{"hello"}},
		{"ls -l /-x", []string{`q"uote sp#ace\x5c`, "-p", "null"}},
		{"stat /-x", []string{"Mode:  0700", "User:  1000"}},
		{`stat "/-x/q""uote sp#ace\"`, []string{"Mode:  0600", "User:  1000"}},
		{"stat /-x/-p", []string{"Type: FIFO", "Mode:  0644"}},
		{"stat /-x/null", []string{"character special", "Device major/minor number: 01:03"}},
		{"stat /ln", []string{`Fast link dest: "../a "b""`, "User:  1000"}},
		{"stat /lost+found", []string{"Mode:  0700", "User:  1000"}},
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
	head, _ := exec.Command("dumpe2fs", "-h", img).Output()
	field := func(name string) int64 {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\S+)`).FindSubmatch(head)
		if m == nil {
			t.Fatalf("no %s in dumpe2fs -h", name)
		}
		n, _ := strconv.ParseInt(string(m[1]), 10, 64)
		return n
	}
	if free, all := field("Free blocks"), field("Block count"); free*10 < all*9 {
		t.Errorf("%d of %d blocks free, want at least 90%%", free, all)
	}
	if !bytes.Contains(head, []byte("Filesystem volume name:   c2vm-vol-0")) || !bytes.Contains(head, []byte("has_journal")) {
		t.Errorf("label or journal missing:\n%s", head)
	}
	if fi, _ := os.Stat(img); fi.Size() != 64<<20 {
		t.Errorf("size %d", fi.Size())
	}
}

// TestWriteDataReproducible: two writes of one tree and seed are the
// same bytes (e2fsprogs' clock pinned, UUID and hash seed derived).
func TestWriteDataReproducible(t *testing.T) {
	fixtures.NeedTools(t, "mke2fs", "debugfs", "e2fsck")
	a, _ := os.ReadFile(writeData(t, seedTree(), t.TempDir()))
	b, _ := os.ReadFile(writeData(t, seedTree(), t.TempDir()))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("two writes differ")
	}
}

func TestWriteDataRefuses(t *testing.T) {
	newline := rootfs.NewTree(rootfs.Inode{Mode: 0o755})
	newline.Add("a\nb", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o644})
	for _, tc := range []struct {
		name string
		tree *rootfs.Tree
		o    DataOptions
		want string
	}{
		{"newline in a name", newline, DataOptions{Label: "x"}, "newline"},
		{"long label", seedTree(), DataOptions{Label: "c2vm-vol-0123456789"}, "label"},
		{"quote in label", seedTree(), DataOptions{Label: `a"b`}, "label"},
		{"too small", seedTree(), DataOptions{Label: "x", Size: 1 << 20}, "minimum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == "newline" {
				fixtures.NeedTools(t, "mke2fs")
			}
			tc.o.TempDir = t.TempDir()
			p := filepath.Join(t.TempDir(), "d.img")
			err := WriteData(context.Background(), tc.tree, p, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
			if _, err := os.Stat(p); err == nil {
				t.Error("a failed write left its file")
			}
			if left, _ := os.ReadDir(tc.o.TempDir); len(left) != 0 {
				t.Errorf("staging left %v", left)
			}
		})
	}
}

// TestCopyData: reusing a data disk copies it (sparse, relabelled) and
// leaves the original as it was; a file that is not ext4 is refused.
func TestCopyData(t *testing.T) {
	fixtures.NeedTools(t, "mke2fs", "debugfs", "e2fsck", "tune2fs")
	src := writeData(t, seedTree(), t.TempDir())
	before, _ := os.ReadFile(src)
	srcInfo, _ := os.Stat(src)
	dst := filepath.Join(t.TempDir(), "data-1.img")
	if err := CopyData(context.Background(), src, dst, "c2vm-vol-1"); err != nil {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(src)
	if fi, _ := os.Stat(src); !bytes.Equal(before, after) || !fi.ModTime().Equal(srcInfo.ModTime()) {
		t.Error("the original changed")
	}
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if l, err := ReadLabel(f); l != "c2vm-vol-1" || err != nil {
		t.Errorf("label %q %v", l, err)
	}
	if err := Check(context.Background(), dst); err != nil {
		t.Error(err)
	}
	if out, _ := exec.Command("debugfs", "-R", "cat /g", dst).Output(); string(out) != "hello" {
		t.Errorf("cat /g: %q", out)
	}
	if fi, _ := os.Stat(dst); fi.Size() != srcInfo.Size() || diskUsage(fi) > fi.Size()/2 {
		t.Errorf("copy: size %d, %d bytes allocated: want the same size, sparse", fi.Size(), diskUsage(fi))
	}
	if err := CopyData(context.Background(), src, dst, "c2vm-vol-1"); err == nil {
		t.Error("copied over an existing file")
	}
	notExt4 := filepath.Join(t.TempDir(), "zeros")
	os.WriteFile(notExt4, make([]byte, 4096), 0o644)
	if err := CopyData(context.Background(), notExt4, filepath.Join(t.TempDir(), "d"), "x"); !errors.Is(err, ErrNotExt4) {
		t.Errorf("zeros: %v, want ErrNotExt4", err)
	}
}

// TestE2fsprogsOutsidePath: the tools are found in /usr/sbin, where Debian
// puts them, when PATH lacks it (an ordinary user's PATH).
func TestE2fsprogsOutsidePath(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/mke2fs"); err != nil {
		fixtures.Skip(t, "no /usr/sbin/mke2fs (scripts/install-deps.sh installs e2fsprogs)")
	}
	t.Setenv("PATH", t.TempDir())
	cmd, err := e2fsprogs(context.Background(), "mke2fs", "-V")
	if err != nil || cmd.Path != "/usr/sbin/mke2fs" {
		t.Fatalf("%v %v", cmd, err)
	}
	if _, err := e2fsprogs(context.Background(), "no-such-tool"); err == nil || !strings.Contains(err.Error(), "need e2fsprogs") {
		t.Errorf("a missing tool: %v", err)
	}
}
