package convert

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/rootfs/ext4"
	"github.com/c2vm/c2vm/vmdir"
)

// writeVolumes writes one data disk per volume — the image's VOLUMEs and
// --volume, sorted — into the output: a copy of the matching --data-disk
// when one is given, else a new ext4 filesystem of --data-size seeded with
// the image's content at the volume's path (Docker's volume
// initialisation). It keeps the volumes for the boot plan (c.volumes,
// bootcfg.PlanOptions.Volumes) and records the disks' file names in the
// manifest, in the same order, for the hypervisor configs. It needs the
// flattened tree (c.tree).
func (c *conversion) writeVolumes(ctx context.Context) error {
	vols, err := bootcfg.Volumes(c.img.Config.Config.Volumes, c.o.Volumes)
	if err != nil {
		return err
	}
	if len(c.o.DataDisks) > len(vols) {
		return fmt.Errorf("--data-disk given %d times, but there are %d volumes (%s)", len(c.o.DataDisks), len(vols), volumePaths(vols))
	}
	if err := c.checkOldDisks(); err != nil {
		return err
	}
	for i, v := range vols {
		name := vmdir.DataDisk(i)
		if err := c.writeVolume(ctx, i, v, name); err != nil {
			return fmt.Errorf("volume %s: %w", v.Path, err)
		}
		c.manifest.DataDisks = append(c.manifest.DataDisks, name)
		c.manifest.Volumes = append(c.manifest.Volumes, vmdir.VolumeInfo{Path: v.Path, Disk: name, Label: v.Label, Reused: i < len(c.o.DataDisks)})
	}
	c.volumes = vols
	return nil
}

func (c *conversion) writeVolume(ctx context.Context, i int, v bootcfg.Volume, name string) error {
	if i < len(c.o.DataDisks) {
		src := c.o.DataDisks[i]
		if err := ext4.CopyData(ctx, src, c.st.path(name), v.Label); err != nil {
			return err
		}
		c.o.progress("volume %s: %s, a copy of %s", v.Path, name, src)
		return nil
	}
	sub, err := c.tree.Subtree(v.Path)
	if err != nil {
		return err
	}
	o := ext4.DataOptions{
		Size:  c.o.DataSize,
		Label: v.Label,
		// One image and path, one filesystem UUID and hash seed.
		Seed:    c.img.ConfigDigest.String() + "\x00" + v.Path,
		Epoch:   c.o.Epoch,
		TempDir: c.st.dir,
	}
	if err := ext4.WriteData(ctx, sub, c.st.path(name), o); err != nil {
		return err
	}
	size := o.Size
	if size == 0 {
		size = ext4.DefaultDataSize
	}
	c.o.progress("volume %s: %s, %s, seeded from the image", v.Path, name, formatSize(size))
	return nil
}

// checkOldDisks refuses to replace an earlier output that holds data
// disks the user has not passed back with --data-disk: they hold the VM's
// data, and replacing the directory would delete them.
func (c *conversion) checkOldDisks() error {
	entries, err := os.ReadDir(c.st.target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("output %s: %w", c.st.target, err)
	}
	for _, e := range entries {
		p := filepath.Join(c.st.target, e.Name())
		if vmdir.IsDataDisk(e.Name()) && !c.reuses(p) {
			return fmt.Errorf("output %s holds %s, the VM's data: keep it with --data-disk %s (copied into the new output), or remove it to start afresh", c.st.target, e.Name(), p)
		}
	}
	return nil
}

// reuses reports whether p is one of the --data-disk files, however
// either is spelled.
func (c *conversion) reuses(p string) bool {
	fi, err := os.Stat(p)
	if err != nil {
		return false
	}
	for _, d := range c.o.DataDisks {
		if di, err := os.Stat(d); err == nil && os.SameFile(fi, di) {
			return true
		}
	}
	return false
}

func volumePaths(vols []bootcfg.Volume) string {
	if len(vols) == 0 {
		return "the image has no VOLUME; add one with --volume"
	}
	var ps []string
	for _, v := range vols {
		ps = append(ps, v.Path)
	}
	return strings.Join(ps, ", ")
}

var sizePattern = regexp.MustCompile(`^([0-9]+)([KMGT]?)(IB|B)?$`)

// ParseSize reads a size as --data-size takes it: bytes, or a number with
// a binary suffix K, M, G or T (KiB/KB, ... read the same): "512M", "2G".
func ParseSize(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(strings.ToUpper(strings.TrimSpace(s)))
	if m == nil || m[2] == "" && m[3] != "" && m[3] != "B" {
		return 0, fmt.Errorf("size %q: want bytes or a number with K, M, G or T (512M, 2G)", s)
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	shift := map[string]uint{"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m[2]]
	if err != nil || n <= 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("size %q: out of range", s)
	}
	return n << shift, nil
}

func formatSize(n int64) string {
	for _, u := range []struct {
		shift uint
		name  string
	}{{40, "TiB"}, {30, "GiB"}, {20, "MiB"}, {10, "KiB"}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d %s", n>>u.shift, u.name)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}
