package bootcfg

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// Volume is one of the VM's data disks: a VOLUME of the image (or one
// added by convert --volume), mounted at Path, found by the guest by the
// ext4 Label of its disk.
type Volume struct {
	Path  string
	Label string
}

// ErrBadVolume is wrapped by every refusal of a volume path.
var ErrBadVolume = errors.New("bad volume path")

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
		if err := ValidateVolumePath(p); err != nil {
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

// ValidateVolumePath accepts an absolute, clean path (no "." or ".."
// element, no repeated or trailing slash) of letters, digits and
// "/._-+@%:=": nothing a shell or XML would read, no "," (QEMU splits its
// options on it), no blank or control character. The kernel's own trees (/proc, /sys, /dev) and the root itself are refused,
// as Docker refuses a volume on "/".
func ValidateVolumePath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w %q: %s", ErrBadVolume, p, why) }
	switch {
	case !strings.HasPrefix(p, "/"):
		return bad("not absolute")
	case p == "/":
		return bad("the root itself")
	case path.Clean(p) != p:
		return bad(`not clean (".", "..", "//" or a trailing "/")`)
	case len(p) > 1024:
		return bad("longer than 1024 bytes")
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+@%:=", r)) {
			return bad(fmt.Sprintf("holds %q (volume paths may hold letters, digits and /._-+@%%:=)", r))
		}
	}
	for _, sys := range []string{"/proc", "/sys", "/dev"} {
		if p == sys || strings.HasPrefix(p, sys+"/") {
			return bad("inside " + sys + ", which the kernel provides")
		}
	}
	return nil
}

// VolumeSteps returns the boot plan's steps for the volumes: mount goes
// right after the switch to the container's root (before the masked and
// read-only paths, as runc makes the spec's mounts first), parents before
// children; unmount goes after the run step, children first. Unmounting
// is optional: a busy filesystem must not hide the container's exit
// status.
func VolumeSteps(vols []Volume) (mount, unmount []plan.Step) {
	for _, v := range vols {
		mount = append(mount, step(&plan.MountVolume{Label: v.Label, Path: v.Path, WaitSeconds: volumeWait}))
	}
	for i := len(vols) - 1; i >= 0; i-- {
		unmount = append(unmount, optional(&plan.Unmount{Path: vols[i].Path}))
	}
	return mount, unmount
}

// AddVolumes puts the volumes' steps into a plan Plan built: each mount
// right after the switch to the container's root, each unmount right
// after the run step.
func AddVolumes(p *plan.Plan, vols []Volume) error {
	if len(vols) == 0 {
		return nil
	}
	mount, unmount := VolumeSteps(vols)
	sw, run := -1, -1
	for i, s := range p.Steps {
		switch s.Action.(type) {
		case *plan.SwitchRoot:
			sw = i
		case *plan.Run:
			run = i
		}
	}
	if sw < 0 || run < sw {
		return errors.New("boot plan: no switch root followed by a run step to put the volumes around")
	}
	var out []plan.Step
	out = append(out, p.Steps[:sw+1]...)
	out = append(out, mount...)
	out = append(out, p.Steps[sw+1:run+1]...)
	out = append(out, unmount...)
	p.Steps = append(out, p.Steps[run+1:]...)
	return nil
}

// VolumeRequirements lists the kernel options data disks need: ext4 for
// them even when the root is squashfs or erofs.
func VolumeRequirements(vols []Volume) []string {
	if len(vols) == 0 {
		return nil
	}
	return []string{"CONFIG_EXT4_FS"}
}
