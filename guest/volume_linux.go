package guest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// mountVolume finds the data disk labelled v.Label and mounts it
// read-write on v.Path, as Docker mounts a volume: no nosuid, nodev or
// noexec (moby volume/local mounts are plain bind mounts).
func (s *initState) mountVolume(v *plan.MountVolume) error {
	dev, err := s.waitLabel(v)
	if err != nil {
		return err
	}
	s.logf("data disk %s: %s", v.Label, dev)
	return mount(&plan.Mount{Source: dev, Target: v.Path, FSType: "ext4"})
}

// waitLabel waits, as for the root disk, for the device holding the ext4
// filesystem labelled v.Label; when several do, it says so and takes the
// first.
func (s *initState) waitLabel(v *plan.MountVolume) (string, error) {
	var dev string
	err := s.waitDisks(v.WaitSeconds, fmt.Sprintf("the ext4 filesystem labelled %s (the data disk for %s)", v.Label, v.Path),
		fmt.Sprintf("the data disk labelled %s (for %s)", v.Label, v.Path),
		func(devs []string) bool {
			var found []string
			for _, d := range devs {
				if l, ok := diskLabel(d); ok && l == v.Label {
					found = append(found, d)
				}
			}
			if len(found) > 1 {
				fmt.Fprintf(s.console, plan.LogPrefix+"%d disks are labelled %s (%s): using %s\n", len(found), v.Label, strings.Join(found, ", "), found[0])
			}
			if len(found) > 0 {
				dev = found[0]
			}
			return dev != ""
		}, describeDisk)
	return dev, err
}

// describeDisk says what a device holds, for the error naming the disks
// seen when no label matched.
func describeDisk(dev string) string {
	switch l, ok := diskLabel(dev); {
	case !ok:
		return "not ext4"
	case l == "":
		return "ext4, no label"
	default:
		return fmt.Sprintf("ext4 %q", l)
	}
}

// diskLabel reads a device's ext4 label.
func diskLabel(dev string) (string, bool) {
	f, err := os.Open(dev)
	if err != nil {
		return "", false
	}
	defer f.Close()
	head := make([]byte, plan.HeadSize)
	n, _ := f.ReadAt(head, 0)
	return plan.Ext4Label(head[:n])
}

// reapWait bounds how long unmountVolume waits for killed processes to
// let go of a busy filesystem.
const reapWait = 2 * time.Second

// unmountVolume syncs and unmounts p once the container has exited. A
// process the container left behind keeps the filesystem busy: as when a
// container's init exits and the kernel kills the rest of its PID
// namespace (pid_namespaces(7)), every remaining process is killed, and
// the unmount retried; if it is still busy the filesystem is remounted
// read-only, which also leaves it clean.
func unmountVolume(p string) error {
	unix.Sync()
	err := unix.Unmount(p, 0)
	if !errors.Is(err, unix.EBUSY) {
		return err
	}
	unix.Kill(-1, unix.SIGKILL)
	for deadline := time.Now().Add(reapWait); time.Now().Before(deadline); {
		for {
			pid, _ := unix.Wait4(-1, nil, unix.WNOHANG, nil)
			if pid <= 0 {
				break
			}
		}
		if err = unix.Unmount(p, 0); !errors.Is(err, unix.EBUSY) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	if rerr := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); rerr != nil {
		return fmt.Errorf("still busy after killing every process (%w); remounting read-only: %w", err, rerr)
	}
	return fmt.Errorf("still busy after killing every process (%w): remounted read-only", err)
}
