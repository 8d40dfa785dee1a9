package guest

import (
	"errors"
	"io/fs"

	"golang.org/x/sys/unix"
)

// maskPath hides p as runc does (libcontainer/rootfs_linux.go, maskPath):
// /dev/null bound over it; for a directory, where that fails with
// ENOTDIR, an empty read-only tmpfs. A path that does not exist is
// skipped.
func maskPath(p string) error {
	err := unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	switch {
	case err == nil, errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, unix.ENOTDIR):
		return unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	}
	return err
}

// readonlyPath makes p read-only as runc does (readonlyPath): a recursive
// bind of itself, remounted read-only with the flags it had (nosuid,
// nodev, noexec) kept. A path that does not exist is skipped.
func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	for st_, ms := range map[int64]uintptr{unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC} {
		if st.Flags&st_ != 0 {
			flags |= ms
		}
	}
	return unix.Mount("", p, "", flags, "")
}
