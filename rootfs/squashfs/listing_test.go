package squashfs

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	rt "github.com/c2vm/c2vm/rootfs/internal/rootfstest"
)

// llnLine matches one line of `unsquashfs -lln`:
//
//	-rwsr-xr-x 0/0  300000 2023-11-14 22:13 squashfs-root/bin/busybox
//	crw-rw---- 0/6    1,  3 2023-11-14 22:13 squashfs-root/dev/null
//	lrwxrwxrwx 0/0       7 2023-11-14 22:13 squashfs-root/bin/sh -> busybox
var llnLine = regexp.MustCompile(`^([-dlcbps])([-rwxsStT]{9}) (\d+)/(\d+) +(\d+|-?\d+, *\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(/.*)?$`)

// listed is what `unsquashfs -lln` shows of one name.
type listed struct {
	kind         string
	mode         uint32
	uid, gid     int
	size         int64
	major, minor uint32
	mtime        string
	link         string
}

func (l listed) String() string {
	return fmt.Sprintf("%s %04o %d:%d size=%d dev=%d,%d %s link=%q",
		l.kind, l.mode, l.uid, l.gid, l.size, l.major, l.minor, l.mtime, l.link)
}

var llnKinds = map[byte]string{'-': "file", 'd': "dir", 'l': "symlink", 'c': "char", 'b': "block", 'p': "fifo", 's': "socket"}

// parsePerm turns "rwsr-xr-t" into permission bits with setuid, setgid
// and sticky.
func parsePerm(s string) uint32 {
	var m uint32
	for i := 0; i < 9; i++ {
		bit := uint32(1) << (8 - i)
		switch c := s[i]; c {
		case 'r', 'w', 'x':
			m |= bit
		case 's', 'S', 't', 'T':
			if c == 's' || c == 't' {
				m |= bit
			}
			m |= [3]uint32{0o4000, 0o2000, 0o1000}[i/3]
		}
	}
	return m
}

// listImage runs `unsquashfs -lln` on img and returns its entries by path
// ("." for the root), in listing order.
func listImage(t testing.TB, img string) (paths []string, m map[string]listed) {
	t.Helper()
	fixtures.NeedTools(t, "unsquashfs")
	cmd := exec.Command("unsquashfs", "-lln", img)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("unsquashfs -lln: %v\n%s", err, out)
	}
	m = map[string]listed{}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		g := llnLine.FindStringSubmatch(line)
		if g == nil {
			t.Fatalf("unsquashfs -lln: unexpected line %q", line)
		}
		l := listed{kind: llnKinds[g[1][0]], mode: parsePerm(g[2]), mtime: g[6]}
		l.uid, _ = strconv.Atoi(g[3])
		l.gid, _ = strconv.Atoi(g[4])
		if maj, min, ok := strings.Cut(g[5], ","); ok {
			// unsquashfs 4.5 prints the raw rdev word as (int)rdev >> 8,
			// rdev & 0xff; rebuild it and decode it as the kernel does
			// (new_decode_dev).
			a, _ := strconv.ParseInt(strings.TrimSpace(maj), 10, 32)
			b, _ := strconv.ParseUint(strings.TrimSpace(min), 10, 8)
			raw := uint32(int32(a))<<8 | uint32(b)
			l.major, l.minor = raw&0xfff00>>8, raw&0xff|raw>>12&0xfff00
		} else {
			l.size, _ = strconv.ParseInt(g[5], 10, 64)
		}
		p := strings.TrimPrefix(g[7], "/")
		if l.kind == "symlink" {
			p, l.link, _ = strings.Cut(p, " -> ")
		}
		if p == "" {
			p = "."
		}
		paths = append(paths, p)
		m[p] = l
	}
	return paths, m
}

// wantListing is what `unsquashfs -lln` should show for the tree.
func wantListing(t testing.TB, tr *rootfs.Tree) (paths []string, m map[string]listed) {
	t.Helper()
	m = map[string]listed{}
	err := tr.Walk(func(e rootfs.Entry) error {
		ino := e.Inode
		l := listed{kind: rt.Kinds[ino.Type], mode: uint32(ino.Mode & 0o7777), uid: int(ino.UID), gid: int(ino.GID),
			mtime: time.Unix(int64(mtime(ino)), 0).UTC().Format("2006-01-02 15:04")}
		switch ino.Type {
		case rootfs.TypeRegular:
			l.size = ino.Size
		case rootfs.TypeSymlink:
			l.link, l.size = ino.Linkname, int64(len(ino.Linkname))
		case rootfs.TypeCharDev, rootfs.TypeBlockDev:
			l.major, l.minor = ino.Devmajor, ino.Devminor
		}
		paths = append(paths, e.Path)
		m[e.Path] = l
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths, m
}

// checkListing compares `unsquashfs -lln img` with the tree, field by
// field: type, permissions with setuid/setgid/sticky, numeric owners,
// sizes, device numbers, mtimes, symlink targets and the order of names.
func checkListing(t testing.TB, tr *rootfs.Tree, img string) {
	t.Helper()
	wantPaths, want := wantListing(t, tr)
	gotPaths, got := listImage(t, img)
	if len(gotPaths) != len(wantPaths) {
		t.Errorf("unsquashfs -lln lists %d names, want %d", len(gotPaths), len(wantPaths))
	}
	bad := 0
	for i, p := range wantPaths {
		g, ok := got[p]
		w := want[p]
		if g.kind == "dir" {
			g.size = 0 // the listing's size in the directory table
		}
		switch {
		case !ok:
			t.Errorf("%s: not listed", p)
		case g != w:
			t.Errorf("%s:\n got %v\nwant %v", p, g, w)
		case i < len(gotPaths) && gotPaths[i] != p:
			t.Errorf("name %d is %q, want %q", i, gotPaths[i], p)
		default:
			continue
		}
		if bad++; bad > 10 {
			t.Fatal("too many differences")
		}
	}
}

func TestListing(t *testing.T) {
	fixtures.NeedTools(t, "unsquashfs")
	for _, c := range []Compression{Zstd, Gzip, XZ} {
		t.Run(c.String(), func(t *testing.T) {
			tr := featureTree(t)
			checkListing(t, tr, writeImage(t, tr, Options{Compression: c}))
		})
	}
	t.Run("big", func(t *testing.T) {
		tr := bigDirTree(t)
		checkListing(t, tr, writeImage(t, tr, Options{}))
	})
	t.Run("owners", func(t *testing.T) {
		// Many owners, high ids, all mode bits, device numbers that need
		// every part of new_encode_dev, mtimes at the edges.
		tr := rootfs.NewTree(rootfs.Inode{Mode: 0o1777, UID: 65534, GID: 65534, ModTime: time.Unix(1<<32-1, 0)})
		for i := range 300 {
			ino := &rootfs.Inode{Type: rootfs.TypeRegular, Mode: uint16(i*37) & 0o7777, UID: uint32(i * 1009), GID: uint32(1<<31 - 1 - i),
				ModTime: time.Unix(int64(i)*1e7, 0), Size: int64(i % 5), Content: data(strings.Repeat("x", i%5))}
			if i%5 == 0 {
				ino.Content = nil
			}
			mustAdd(t, tr, "f"+itoa(i), ino)
		}
		for i, d := range [][2]uint32{{0, 0}, {1, 3}, {255, 255}, {4095, 1<<20 - 1}, {259, 256}, {8, 65536}} {
			typ := []rootfs.Type{rootfs.TypeCharDev, rootfs.TypeBlockDev}[i%2]
			mustAdd(t, tr, "dev"+itoa(i), &rootfs.Inode{Type: typ, Mode: 0o600, Devmajor: d[0], Devminor: d[1]})
		}
		mustAdd(t, tr, "future", &rootfs.Inode{Type: rootfs.TypeFIFO, Mode: 0o644, ModTime: time.Unix(1<<40, 0)})
		mustAdd(t, tr, "past", &rootfs.Inode{Type: rootfs.TypeSocket, Mode: 0o644, ModTime: time.Unix(-5, 0)})
		mustAdd(t, tr, "slink", &rootfs.Inode{Type: rootfs.TypeSymlink, Linkname: strings.Repeat("../", 300) + "x"})
		checkListing(t, tr, writeImage(t, tr, Options{}))
	})
}
