package bootcfg

import (
	"fmt"
	"sort"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// Volume is one of the VM's data disks: a VOLUME of the image (or one
// added by convert --volume), mounted at Path, found by the guest by the
// ext4 Label of its disk.
type Volume struct {
	Path  string
	Label string
}

// volumeWait bounds the wait for a data disk: by the time the init looks
// for one it has found the root disk, so its bus has been probed.
const volumeWait = 10

// Volumes returns the image's VOLUMEs and the extra paths, validated,
// without repeats, sorted, each with its data disk's label
// (plan.VolumeLabel of its index), so that data-<n>.img serves the n-th.
// VOLUME keys come from the image and are untrusted: one that is not a
// plain absolute path is refused before it can reach a config file.
func Volumes(image map[string]struct{}, extra []string) ([]Volume, error) {
	seen := map[string]bool{}
	var paths []string
	add := func(p, from string) error {
		p, err := CleanVolume(p)
		if err != nil {
			return fmt.Errorf("%s: %w", from, err)
		}
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
		return nil
	}
	for p := range image {
		if err := add(p, "image VOLUME"); err != nil {
			return nil, err
		}
	}
	for _, p := range extra {
		if err := add(p, "--volume"); err != nil {
			return nil, err
		}
	}
	sort.Strings(paths)
	out := make([]Volume, len(paths))
	for i, p := range paths {
		out[i] = Volume{Path: p, Label: plan.VolumeLabel(i)}
	}
	return out, nil
}

// volumeSteps returns the boot plan's steps for the volumes (Plan puts
// them in place): mount goes right after the switch to the container's
// root (before the masked and read-only paths, as runc makes the spec's
// mounts first), parents before children; unmount goes after the run
// step, children first. Unmounting
// is optional: a busy filesystem must not hide the container's exit
// status.
func volumeSteps(vols []Volume) (mount, unmount []plan.Step) {
	for _, v := range vols {
		mount = append(mount, step(&plan.MountVolume{Label: v.Label, Path: v.Path, WaitSeconds: volumeWait}))
	}
	for i := len(vols) - 1; i >= 0; i-- {
		unmount = append(unmount, optional(&plan.Unmount{Path: vols[i].Path}))
	}
	return mount, unmount
}
