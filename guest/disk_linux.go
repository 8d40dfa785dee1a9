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
	// A c2vm.roothash asks for a check this plan does not make.
	if _, err := s.args.RootHashFor(nil); err != nil {
		return err
	}
	dev, err := s.waitRoot(r)
	if err != nil {
		return err
	}
	s.logf("root disk: %s (%s)", dev, r.FSType)
	return mount(&plan.Mount{Source: dev, Target: r.Target, FSType: r.FSType, Options: []string{"ro"}})
}

// waitRoot polls the block devices until one holds the root filesystem.
func (s *initState) waitRoot(r *plan.FindRoot) (string, error) {
	var dev string
	err := s.waitDisks(r.WaitSeconds, fmt.Sprintf("the %s root filesystem", r.FSType),
		fmt.Sprintf("the root disk (an %s image on a virtio-blk or Xen disk)", r.FSType),
		func(devs []string) bool {
			dev = firstDev(devs, func(d string) bool { return probe(d, r.FSType) })
			return dev != ""
		}, nil)
	return dev, err
}

// waitDisks polls the block devices until found says all is there,
// saying once what it waits for (waitingFor), and giving up after
// waitSeconds with the devices it saw (each with what it holds when
// describe is given) and what no disk held (missing).
func (s *initState) waitDisks(waitSeconds int, missing, waitingFor string, found func(devs []string) bool, describe func(dev string) string) error {
	wait := time.Duration(waitSeconds) * time.Second
	if wait <= 0 {
		wait = 10 * time.Second
	}
	start := time.Now()
	deadline := start.Add(wait)
	said := false
	for {
		devs := blockDevices()
		if found(devs) {
			return nil
		}
		if time.Now().After(deadline) {
			seen := devs
			if describe != nil {
				seen = make([]string, len(devs))
				for i, d := range devs {
					seen[i] = d + " (" + describe(d) + ")"
				}
			}
			msg := fmt.Sprintf("no disk holds %s after %s; block devices seen: %s", missing, wait, orNone(seen))
			if len(s.moduleErrs) > 0 {
				msg += "; module errors: " + strings.Join(s.moduleErrs, "; ")
			}
			return errors.New(msg)
		}
		if !said && time.Since(start) > time.Second {
			fmt.Fprintf(s.console, plan.LogPrefix+"waiting up to %s for %s...\n", wait, waitingFor)
			said = true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// firstDev is the first of devs that match accepts, or "".
func firstDev(devs []string, match func(string) bool) string {
	for _, d := range devs {
		if match(d) {
			return d
		}
	}
	return ""
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
	head := readHead(dev)
	// A data disk is ext4 too: it is never the root.
	return matchesFS(head, fstype) && !plan.IsDataDisk(head)
}

// readHead reads a disk's first 2 KiB (less when it is shorter or
// unreadable).
func readHead(dev string) []byte {
	f, err := os.Open(dev)
	if err != nil {
		return nil
	}
	defer f.Close()
	head := make([]byte, 2048)
	n, _ := f.ReadAt(head, 0)
	return head[:n]
}
