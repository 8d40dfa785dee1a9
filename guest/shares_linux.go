package guest

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// mountShares mounts each host share the kernel command line names.
func (s *initState) mountShares() error {
	for _, sh := range s.args.Shares {
		if err := mountShare(sh); err != nil {
			return fmt.Errorf("host share %s on %s: %w", sh.Tag, sh.Path, err)
		}
		s.logf("host share %s (%s) on %s", sh.Tag, sh.FSType, sh.Path)
	}
	return nil
}

func mountShare(sh plan.Share) error {
	if err := os.MkdirAll(sh.Path, 0o755); err != nil {
		return err
	}
	var flags uintptr = unix.MS_NODEV | unix.MS_NOSUID
	if sh.ReadOnly {
		flags |= unix.MS_RDONLY
	}
	data := ""
	if sh.FSType == "9p" {
		// 9P2000.L carries owners and modes; 512 KiB messages for speed.
		data = "trans=virtio,version=9p2000.L,msize=524288"
	}
	return unix.Mount(sh.Tag, sh.Path, sh.FSType, flags, data)
}
