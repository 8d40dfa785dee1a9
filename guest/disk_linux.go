package guest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// findRoot finds the root disk and mounts it read-only on r.Target.
func (s *initState) findRoot(r *plan.FindRoot) error {
	dev, err := s.waitRoot(r)
	if err != nil {
		return err
	}
	s.logf("root disk: %s (%s)", dev, r.FSType)
	return mount(&plan.Mount{Source: dev, Target: r.Target, FSType: r.FSType, Options: []string{"ro"}})
}

// waitRoot polls the block devices until one holds the root filesystem,
// saying once what it waits for, and giving up after the plan's bound
// with the devices it saw.
func (s *initState) waitRoot(r *plan.FindRoot) (string, error) {
	wait := time.Duration(r.WaitSeconds) * time.Second
	if wait <= 0 {
		wait = 10 * time.Second
	}
	start := time.Now()
	deadline := start.Add(wait)
	said := false
	for {
		devs := blockDevices()
		for _, d := range devs {
			if probe(d, r.FSType) {
				return d, nil
			}
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("no disk holds the %s root filesystem after %s; block devices seen: %s", r.FSType, wait, orNone(devs))
			if len(s.moduleErrs) > 0 {
				msg += "; module errors: " + strings.Join(s.moduleErrs, "; ")
			}
			return "", errors.New(msg)
		}
		if !said && time.Since(start) > time.Second {
			fmt.Fprintf(s.console, plan.LogPrefix+"waiting up to %s for the root disk (an %s image on a virtio-blk or Xen disk)...\n", wait, r.FSType)
			said = true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// blockDevices lists /dev nodes of every disk and partition in sysfs,
// creating a node when devtmpfs has none.
func blockDevices() []string {
	var out []string
	entries, _ := os.ReadDir("/sys/class/block")
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") {
			continue
		}
		dev := "/dev/" + name
		if _, err := os.Stat(dev); err != nil {
			if b, err := os.ReadFile(filepath.Join("/sys/class/block", name, "dev")); err == nil {
				var maj, min uint32
				if _, err := fmt.Sscanf(strings.TrimSpace(string(b)), "%d:%d", &maj, &min); err == nil {
					unix.Mknod(dev, unix.S_IFBLK|0o600, int(unix.Mkdev(maj, min)))
				}
			}
		}
		out = append(out, dev)
	}
	sort.Strings(out)
	return out
}

func probe(dev, fstype string) bool {
	f, err := os.Open(dev)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, 2048)
	n, _ := f.ReadAt(head, 0)
	// A data disk is ext4 too: it is never the root.
	return matchesFS(head[:n], fstype) && !plan.IsDataDisk(head[:n])
}
