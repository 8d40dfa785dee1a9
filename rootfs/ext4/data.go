package ext4

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/c2vm/c2vm/internal/uuid"
	"github.com/c2vm/c2vm/rootfs"
)

// A data disk is the writable ext4 filesystem behind one of the image's
// VOLUMEs. tar2ext4 cannot make one: compactext4 (hcsshim v0.15.0) sizes
// the image to its contents (MaximumDiskSize only reserves group
// descriptor room), picks the fewest inodes per group that hold the files
// (16 for a small seed: a grown 1 GiB copy would have 128 inodes) and sets
// the read-only feature. So the filesystem is made by mke2fs, with the
// geometry, journal, label, UUID and hash seed of an ordinary ext4, and
// the seed is copied in by debugfs from a script written from the tree:
// rootless, nothing extracted to the host but file contents, and every
// owner, mode, time, xattr and hardlink set explicitly.

// DefaultDataSize is a data disk's size when none is given.
const DefaultDataSize = 1 << 30

// MinDataSize is the smallest data disk: room for the journal and some data.
const MinDataSize = 16 << 20

// DataOptions configure WriteData.
type DataOptions struct {
	// Size in bytes, rounded up to 4 KiB; 0 = DefaultDataSize.
	Size int64
	// Label is the ext4 volume label the guest finds the disk by (at most
	// 16 bytes).
	Label string
	// Seed makes the filesystem UUID and directory hash seed: the same
	// seed, tree and tools give the same bytes (the image's config digest
	// and the volume path, say).
	Seed string
	// Epoch is the time e2fsprogs stamps on what it creates itself (the
	// superblock, lost+found); the tree's entries keep their own.
	Epoch time.Time
	// TempDir stages file contents for debugfs ("" = os.TempDir()).
	TempDir string
}

// mke2fsConf pins the features and geometry, whatever the host's
// /etc/mke2fs.conf says: e2fsprogs 1.47's ext4 defaults without
// orphan_file (Linux 5.15+), one inode per 16 KiB.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384
[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
`

// WriteData writes t as a new data disk at path, which must not exist: a
// sparse file of o.Size bytes holding an ext4 filesystem seeded with t.
// It needs e2fsprogs (mke2fs, debugfs, e2fsck), and checks its result with
// e2fsck -fn. On error no file is left at path.
func WriteData(ctx context.Context, t *rootfs.Tree, path string, o DataOptions) error {
	size, err := dataSize(o.Size)
	if err != nil {
		return err
	}
	if err := checkLabel(o.Label); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = seedData(ctx, t, path, o)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("data disk %s: %w", path, err)
	}
	return nil
}

// seedData makes the filesystem in the file at path and copies t into it.
func seedData(ctx context.Context, t *rootfs.Tree, path string, o DataOptions) error {
	stage, err := os.MkdirTemp(o.TempDir, "c2vm-data-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)
	env, err := e2fsEnv(stage, o.Epoch)
	if err != nil {
		return err
	}
	if err := mkfs(ctx, env, path, o); err != nil {
		return err
	}
	script, err := seedScript(t, stage)
	if err != nil {
		return err
	}
	if err := debugfs(ctx, env, path, script); err != nil {
		return err
	}
	return run(ctx, env, "e2fsck", "-fn", path)
}

func dataSize(n int64) (int64, error) {
	if n == 0 {
		n = DefaultDataSize
	}
	if n < MinDataSize {
		return 0, fmt.Errorf("data disk size %d is below the minimum of %d MiB", n, MinDataSize>>20)
	}
	return (n + 4095) &^ 4095, nil
}

// checkLabel: s_volume_name is 16 bytes (Documentation/filesystems/ext4/
// super.rst); the label is a word on mke2fs's command line.
func checkLabel(l string) error {
	if l == "" || len(l) > 16 || strings.ContainsFunc(l, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) {
		return fmt.Errorf("data disk label %q: want 1-16 of [A-Za-z0-9._-]", l)
	}
	return nil
}

// e2fsEnv pins e2fsprogs' clock and configuration. E2FSPROGS_FAKE_TIME=0
// means "no fake time" to e2fsprogs 1.47, so the epoch is at least 1 s.
func e2fsEnv(stage string, epoch time.Time) ([]string, error) {
	conf := filepath.Join(stage, "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		return nil, err
	}
	sec := max(epoch.Unix(), 1)
	return append(os.Environ(), "LC_ALL=C", "MKE2FS_CONFIG="+conf, "E2FSPROGS_FAKE_TIME="+strconv.FormatInt(sec, 10)), nil
}

func mkfs(ctx context.Context, env []string, path string, o DataOptions) error {
	// lazy_*_init: the file is new and sparse, so its inode tables and
	// journal read as zeros already; writing them would only fill holes.
	ext := "hash_seed=" + seedUUID("hash seed", o.Seed) + ",root_owner=0:0,lazy_itable_init=1,lazy_journal_init=1,nodiscard"
	args := []string{"-q", "-F", "-t", "ext4", "-T", "ext4", "-m", "0", "-L", o.Label, "-U", seedUUID("uuid", o.Seed), "-E", ext, path}
	return run(ctx, env, "mke2fs", args...)
}

// seedUUID derives a UUID from the seed and a purpose.
func seedUUID(purpose, seed string) string {
	return uuid.Derive("c2vm data disk "+purpose, seed).String()
}

// e2fsprogs finds one of its tools. Debian installs them in /usr/sbin,
// which is not in an ordinary user's PATH (/etc/profile).
func e2fsprogs(ctx context.Context, tool string, args ...string) (*exec.Cmd, error) {
	p, err := exec.LookPath(tool)
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if err == nil {
			break
		}
		p, err = exec.LookPath(filepath.Join(dir, tool))
	}
	if err != nil {
		return nil, fmt.Errorf("data disks need e2fsprogs: %s not found in PATH, /usr/sbin or /sbin", tool)
	}
	return exec.CommandContext(ctx, p, args...), nil
}

func run(ctx context.Context, env []string, tool string, args ...string) error {
	cmd, err := e2fsprogs(ctx, tool, args...)
	if err != nil {
		return err
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", tool, err, firstLines(out, 5))
	}
	return nil
}

// debugfs runs a script. debugfs goes on after a failing command and
// exits 0, printing the failure on stderr: any stderr line but its
// version banner is an error.
func debugfs(ctx context.Context, env []string, path, script string) error {
	cmd, err := e2fsprogs(ctx, "debugfs", "-w", "-f", "-", path)
	if err != nil {
		return err
	}
	cmd.Env = env
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("debugfs: %w: %s", err, firstLines(stderr.Bytes(), 5))
	}
	var errs []string
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if l != "" && !strings.HasPrefix(l, "debugfs ") {
			errs = append(errs, l)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("seeding with debugfs: %s", firstLines([]byte(strings.Join(errs, "\n")), 5))
	}
	return nil
}

// Check runs e2fsck -fn on an ext4 image: it reports but never changes.
func Check(ctx context.Context, path string) error {
	if err := run(ctx, append(os.Environ(), "LC_ALL=C"), "e2fsck", "-fn", path); err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	return nil
}

func firstLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = append(lines[:n], "...")
	}
	return strings.Join(lines, "; ")
}
