package bootcfg

import (
	"errors"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

func TestVolumes(t *testing.T) {
	img := map[string]struct{}{"/var/lib/db": {}, "/data": {}}
	vols, err := Volumes(img, []string{"/srv/x", "/data"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Volume{{"/data", "c2vm-vol-0"}, {"/srv/x", "c2vm-vol-1"}, {"/var/lib/db", "c2vm-vol-2"}}
	if !reflect.DeepEqual(vols, want) {
		t.Errorf("got %v, want %v", vols, want)
	}
	mount, unmount := volumeSteps(vols[:2])
	wantMount := []plan.Step{
		{Action: &plan.MountVolume{Label: "c2vm-vol-0", Path: "/data", WaitSeconds: volumeWait}},
		{Action: &plan.MountVolume{Label: "c2vm-vol-1", Path: "/srv/x", WaitSeconds: volumeWait}},
	}
	wantUnmount := []plan.Step{
		{Action: &plan.Unmount{Path: "/srv/x"}, Optional: true},
		{Action: &plan.Unmount{Path: "/data"}, Optional: true},
	}
	if !reflect.DeepEqual(mount, wantMount) || !reflect.DeepEqual(unmount, wantUnmount) {
		t.Errorf("steps:\n%v\n%v", mount, unmount)
	}
}

// TestVolumePathRefused: VOLUME keys are untrusted and end up in boot.json
// and beside hypervisor configs; anything but a plain path is refused.
func TestVolumePathRefused(t *testing.T) {
	for _, p := range []string{
		"data", "", "/", "//data", "/a/../b", "/a/./b", "/..",
		`/data"`, "/data'x", "/da ta", "/data\nx", "/data\x00", "/data\t",
		"/x;touch /tmp/y", "/$(id)", "/a`id`", "/a|b", "/a&b", "/a>b",
		"/<disk/>", "/a&amp;", "/a,b", `/a\b`, "/a*", "/~x",
		"/proc", "/proc/x", "/sys", "/dev/shm", "/dätä", "/a:b", "/a=b", "/a%b",
	} {
		t.Run(p, func(t *testing.T) {
			if err := ValidateVolume(p); !errors.Is(err, ErrBadVolume) {
				t.Errorf("accepted (%v)", err)
			}
			if _, err := Volumes(map[string]struct{}{p: {}}, nil); !errors.Is(err, ErrBadVolume) {
				t.Errorf("Volumes accepted (%v)", err)
			}
		})
	}
	for _, p := range []string{"/data", "/data/", "/var/lib/postgresql/data", "/a-b_c.d+e@f", "/procfs", "/devx"} {
		if err := ValidateVolume(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestAddVolumes: in a whole plan, the data disks are mounted right after
// the switch to the container's root and unmounted after the run step.
func TestAddVolumes(t *testing.T) {
	spec := &specs.Spec{Process: &specs.Process{Args: []string{"/bin/sh"}, Cwd: "/"}, Hostname: "h",
		Linux: &specs.Linux{MaskedPaths: []string{"/proc/kcore"}}}
	p0, err := Plan(spec, PlanOptions{FSType: "squashfs"})
	if err != nil {
		t.Fatal(err)
	}
	n := len(p0.Steps)
	vols := []Volume{{"/data", "c2vm-vol-0"}, {"/data/sub", "c2vm-vol-1"}}
	p, err := Plan(spec, PlanOptions{FSType: "squashfs", Volumes: vols})
	if err != nil {
		t.Fatal(err)
	}
	if req := Requirements(PlanOptions{FSType: "squashfs", Volumes: vols}); !slices.Contains(req, "CONFIG_EXT4_FS") {
		t.Errorf("requirements %q lack ext4 for the data disks", req)
	}
	sw := 0
	for i, s := range p.Steps {
		if s.Op() == "switchroot" {
			sw = i
		}
	}
	got := []string{p.Steps[sw+1].String(), p.Steps[sw+2].String(), p.Steps[sw+3].Op(), p.Steps[len(p.Steps)-3].Op(), p.Steps[len(p.Steps)-2].String(), p.Steps[len(p.Steps)-1].String()}
	want := []string{
		"mount the data disk labelled c2vm-vol-0 (waiting up to 10s) on /data",
		"mount the data disk labelled c2vm-vol-1 (waiting up to 10s) on /data/sub",
		"shares", "run",
		"sync and unmount /data/sub (optional)",
		"sync and unmount /data (optional)",
	}
	if len(p.Steps) != n+4 || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
