package guest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// verityRoot finds the root disk and its hash disk, creates the verity
// target over them and reads it whole: a corrupted block fails the boot
// here, before anything of the image runs. The root hash is the plan's,
// checked against the command line's c2vm.roothash first (a different
// one stops the boot before any disk is touched).
func (s *initState) verityRoot(step *plan.VerityRoot) error {
	root, err := s.args.RootHashFor(step)
	if err != nil {
		return err
	}
	v := *step
	v.RootHash = root
	salt, err := hex.DecodeString(v.Salt)
	if err != nil {
		return fmt.Errorf("dm-verity salt %q: %w", v.Salt, err)
	}
	var data, hash string
	err = s.waitDisks(v.WaitSeconds, fmt.Sprintf("the %s root filesystem and its dm-verity hash tree (salt %s)", v.FSType, v.Salt),
		fmt.Sprintf("the root disk (an %s image) and its dm-verity hash disk", v.FSType),
		func(devs []string) bool {
			data = firstDev(devs, func(d string) bool { return probe(d, v.FSType) })
			hash = firstDev(devs, func(d string) bool { return matchesVerity(readHead(d), salt) })
			return data != "" && hash != ""
		}, nil)
	if err != nil {
		return err
	}
	s.logf("root disk: %s (%s), dm-verity hash disk: %s, root hash %s", data, v.FSType, hash, v.RootHash)
	if err := createVerity(&v, data, hash); err != nil {
		return fmt.Errorf("dm-verity: %w", err)
	}
	start := time.Now()
	if err := checkAll(v.Device(), data); err != nil {
		return err
	}
	s.logf("dm-verity: %s checked whole (%d blocks) in %s", v.Device(), v.DataBlocks, time.Since(start).Round(time.Millisecond))
	return nil
}

// checkAll reads the verity target from start to end. dm-verity checks a
// block only when it is read, so a corrupted file the container never
// reads would otherwise go unnoticed; reading all of it at boot means the
// container never starts on a root that differs from the image. The kernel
// fails the read of a corrupted block with EIO (no optional table
// arguments: neither ignore_ nor restart_on_corruption).
func checkAll(dev, data string) error {
	f, err := os.Open(dev)
	if err != nil {
		return fmt.Errorf("dm-verity: opening %s: %w", dev, err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var off int64
	for {
		n, err := f.ReadAt(buf, off)
		off += int64(n)
		if err == io.EOF {
			break
		}
		if errors.Is(err, unix.EIO) {
			return fmt.Errorf("dm-verity: the root disk %s fails its hash check near byte %d: it is corrupted, or not the image its hash tree and root hash were made for", data, off)
		}
		if err != nil {
			return fmt.Errorf("dm-verity: reading %s: %w", dev, err)
		}
	}
	// Leave the page cache to the container: it rereads what it uses.
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
	return nil
}

// createVerity sets up the target as veritysetup open does, with the
// device-mapper ioctls (include/uapi/linux/dm-ioctl.h): create the
// device, load its read-only table, resume it; then makes the
// /dev/mapper node that udev would.
func createVerity(v *plan.VerityRoot, data, hash string) error {
	ctl, err := openControl()
	if err != nil {
		return err
	}
	defer ctl.Close()
	dataID, err := devID(data)
	if err != nil {
		return err
	}
	hashID, err := devID(hash)
	if err != nil {
		return err
	}
	created, err := dmIoctl(ctl, unix.DM_DEV_CREATE, v.Name, 0, nil)
	if err != nil {
		return fmt.Errorf("creating device %s: %w", v.Name, err)
	}
	// dm-verity refuses a writable table ("Device must be readonly").
	if _, err := dmIoctl(ctl, unix.DM_TABLE_LOAD, v.Name, unix.DM_READONLY_FLAG, target(v.Sectors(), "verity", v.Table(dataID, hashID))); err != nil {
		return fmt.Errorf("loading table %q: %w", v.Table(dataID, hashID), err)
	}
	// DM_DEV_SUSPEND without DM_SUSPEND_FLAG resumes: the table goes live.
	if _, err := dmIoctl(ctl, unix.DM_DEV_SUSPEND, v.Name, 0, nil); err != nil {
		return fmt.Errorf("resuming %s: %w", v.Name, err)
	}
	if err := os.MkdirAll(filepath.Dir(v.Device()), 0o755); err != nil {
		return err
	}
	if err := unix.Mknod(v.Device(), unix.S_IFBLK|0o600, int(created.Dev)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("creating %s: %w", v.Device(), err)
	}
	return nil
}

// openControl opens /dev/mapper/control, which devtmpfs creates when
// dm_mod loads; its number is in sysfs if the node is missing.
func openControl() (*os.File, error) {
	const p = "/dev/" + unix.DM_DIR + "/" + unix.DM_CONTROL_NODE
	if _, err := os.Stat(p); err != nil {
		b, rerr := os.ReadFile("/sys/class/misc/device-mapper/dev")
		if rerr != nil {
			return nil, fmt.Errorf("no %s and no device-mapper in sysfs (is dm_mod loaded?): %w", p, rerr)
		}
		var maj, min uint32
		if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err != nil {
			return nil, fmt.Errorf("device-mapper's number %q: %w", b, err)
		}
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := unix.Mknod(p, unix.S_IFCHR|0o600, int(unix.Mkdev(maj, min))); err != nil {
			return nil, fmt.Errorf("creating %s: %w", p, err)
		}
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening device-mapper control: %w", err)
	}
	return f, nil
}

// devID names a block device as major:minor, which the table accepts
// whatever the node's path.
func devID(dev string) (string, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return "", fmt.Errorf("stat %s: %w", dev, err)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev)), nil
}

// target is one struct dm_target_spec followed by its NUL-terminated
// parameters, padded to 8 bytes as the kernel expects the next spec.
func target(sectors uint64, kind, params string) []byte {
	n := unix.SizeofDmTargetSpec + len(params) + 1
	n = (n + 7) &^ 7
	b := make([]byte, n)
	spec := (*unix.DmTargetSpec)(unsafe.Pointer(&b[0]))
	spec.Length = sectors
	spec.Next = uint32(n)
	copy(spec.Target_type[:], kind)
	copy(b[unix.SizeofDmTargetSpec:], params)
	return b
}

// dmIoctl sends one device-mapper command for the device name, with body
// (target specs) after the struct dm_ioctl header, and returns the
// header the kernel wrote back.
func dmIoctl(ctl *os.File, cmd uint, name string, flags uint32, body []byte) (*unix.DmIoctl, error) {
	// Room for the kernel's answer (DM_DEV_CREATE reports the device).
	size := unix.SizeofDmIoctl + len(body) + 4096
	// uint64 words keep the header 8-byte aligned.
	words := make([]uint64, (size+7)/8)
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*8)
	h := (*unix.DmIoctl)(unsafe.Pointer(&words[0]))
	// Interface 4.0.0: the kernel accepts any minor at or below its own.
	h.Version = [3]uint32{unix.DM_VERSION_MAJOR, 0, 0}
	h.Data_size = uint32(len(buf))
	h.Data_start = unix.SizeofDmIoctl
	h.Flags = flags
	if len(body) > 0 {
		h.Target_count = 1
	}
	if len(name) >= len(h.Name) {
		return nil, fmt.Errorf("device name %q too long", name)
	}
	copy(h.Name[:], name)
	copy(buf[unix.SizeofDmIoctl:], body)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, ctl.Fd(), uintptr(cmd), uintptr(unsafe.Pointer(&words[0]))); errno != 0 {
		return nil, errno
	}
	out := *h
	return &out, nil
}
