package ext4

import (
	"os"
	"syscall"
)

// diskUsage is the bytes a file has allocated (st_blocks is in 512-byte
// units whatever the filesystem's block size).
func diskUsage(fi os.FileInfo) int64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Blocks * 512
	}
	return fi.Size()
}
