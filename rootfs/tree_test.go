package rootfs

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStatEncoding checks the encodings against the C library's own
// numbers: S_IF* and DT_* (FT_* equals DT_* >> 12 of S_IFMT), and Mkdev
// for new_encode_dev, big numbers included.
func TestStatEncoding(t *testing.T) {
	for _, tc := range []struct {
		typ  Type
		ifmt uint32
	}{
		{TypeRegular, syscall.S_IFREG}, {TypeDir, syscall.S_IFDIR}, {TypeSymlink, syscall.S_IFLNK},
		{TypeCharDev, syscall.S_IFCHR}, {TypeBlockDev, syscall.S_IFBLK}, {TypeFIFO, syscall.S_IFIFO},
		{TypeSocket, syscall.S_IFSOCK},
	} {
		ino := &Inode{Type: tc.typ, Mode: 0o4755 | 0o170000}
		if got, want := ino.StatMode(), tc.ifmt|0o4755; got != want {
			t.Errorf("type %d: StatMode %o, want %o", tc.typ, got, want)
		}
		if got, want := tc.typ.FileType(), uint8(map[uint32]int{syscall.S_IFREG: 1, syscall.S_IFDIR: 2,
			syscall.S_IFCHR: 3, syscall.S_IFBLK: 4, syscall.S_IFIFO: 5, syscall.S_IFSOCK: 6, syscall.S_IFLNK: 7}[tc.ifmt]); got != want {
			t.Errorf("type %d: FileType %d, want %d", tc.typ, got, want)
		}
	}
	if bad := Type(99); bad.Valid() || bad.IFMT() != 0 || bad.FileType() != 0 {
		t.Error("an unknown type has an encoding")
	}
	for _, d := range [][2]uint32{{1, 3}, {8, 0}, {259, 65536}, {4095, 1<<20 - 1}} {
		ino := &Inode{Type: TypeBlockDev, Devmajor: d[0], Devminor: d[1]}
		// new_encode_dev is glibc's makedev truncated to 32 bits for
		// numbers that fit (major < 4096, minor < 2^20).
		if got, want := ino.Rdev(), uint32(unix.Mkdev(d[0], d[1])); got != want {
			t.Errorf("Rdev(%d, %d) = %#x, want %#x", d[0], d[1], got, want)
		}
	}
}
