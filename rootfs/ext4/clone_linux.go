package ext4

import (
	"os"

	"golang.org/x/sys/unix"
)

// cloneFile makes dst share src's blocks (FICLONE, ioctl_ficlone(2)):
// instant and copy-on-write on btrfs and XFS; other filesystems say
// EOPNOTSUPP or EXDEV and the caller copies.
func cloneFile(dst, src *os.File) error {
	return unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
}
