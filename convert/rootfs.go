package convert

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/rootfs/erofs"
	"github.com/c2vm/c2vm/rootfs/ext4"
	"github.com/c2vm/c2vm/rootfs/squashfs"
	"github.com/c2vm/c2vm/vmdir"
)

// DefaultRootfs is the root filesystem format used when none is asked for.
const DefaultRootfs = "squashfs"

// writers names the root filesystem formats: one rootfs.Writer each.
func (c *conversion) writers() map[string]rootfs.Writer {
	return map[string]rootfs.Writer{
		"erofs":    erofs.Format{Options: erofs.Options{ModTime: c.o.Epoch}},
		"ext4":     ext4.Format{},
		"squashfs": squashfs.Format{Options: squashfs.Options{ModTime: c.o.Epoch}},
	}
}

// Formats lists the root filesystem formats --rootfs accepts, sorted.
func Formats() []string {
	var names []string
	for n := range (&conversion{}).writers() {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (c *conversion) rootfsFormat() (string, rootfs.Writer, error) {
	name := c.o.RootfsFormat
	if name == "" {
		name = DefaultRootfs
	}
	ws := c.writers()
	w, ok := ws[name]
	if !ok {
		names := make([]string, 0, len(ws))
		for n := range ws {
			names = append(names, n)
		}
		sort.Strings(names)
		return "", nil, fmt.Errorf("unknown --rootfs %q (have %s)", name, strings.Join(names, ", "))
	}
	return name, w, nil
}

// writeRootfs writes rootfs.img and records its format in the manifest.
func (c *conversion) writeRootfs(ctx context.Context) error {
	name, w, err := c.rootfsFormat()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(c.st.path(vmdir.Rootfs), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("rootfs.img: %w", err)
	}
	defer f.Close()
	restore := func() {}
	if c.o.Meter != nil {
		if restore, err = meterContents(c.tree, c.o.Meter, "rootfs "+name); err != nil {
			return err
		}
	}
	err = w.Write(ctx, c.tree, f)
	restore() // before the stage line, so the bar is gone when it prints
	if err != nil {
		return fmt.Errorf("writing %s rootfs: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("rootfs.img: %w", err)
	}
	fi, err := os.Stat(c.st.path(vmdir.Rootfs))
	if err != nil {
		return err
	}
	c.o.progress("rootfs: %s, %s", name, humanSize(fi.Size()))
	c.manifest.Rootfs = name
	return nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
