package bootcfg

import (
	"reflect"
	"slices"
	"testing"

	"github.com/c2vm/c2vm/bootcfg/plan"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestVerityPlan: with a hash tree, the root is found and checked by the
// verityroot step and mounted from the mapper device; nothing else moves.
func TestVerityPlan(t *testing.T) {
	spec := &specs.Spec{Process: &specs.Process{Args: []string{"/bin/sh"}, Cwd: "/"}, Hostname: "h"}
	p0, err := Plan(spec, PlanOptions{FSType: "squashfs"})
	if err != nil {
		t.Fatal(err)
	}
	v := &plan.VerityRoot{DataBlocks: 300, HashOffset: 4096, RootHash: "ab", Salt: "cd"}
	o := PlanOptions{FSType: "squashfs", Verity: v}
	p, err := Plan(spec, o)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(p0.Steps, func(s plan.Step) bool { return s.Op() == "findroot" })
	want := []plan.Step{
		{Action: &plan.VerityRoot{FSType: "squashfs", WaitSeconds: 10, Name: "c2vm-root", DataBlocks: 300, HashOffset: 4096, RootHash: "ab", Salt: "cd"}},
		{Action: &plan.Mount{Source: "/dev/mapper/c2vm-root", Target: lowerDir, FSType: "squashfs", Options: []string{"ro"}}},
	}
	if !reflect.DeepEqual(p.Steps[i:i+2], want) {
		t.Errorf("root steps %v, want %v", p.Steps[i:i+2], want)
	}
	if len(p.Steps) != len(p0.Steps)+1 || !reflect.DeepEqual(p.Steps[i+2:], p0.Steps[i+1:]) {
		t.Errorf("the steps after the root differ from the plan without verity")
	}
	if v.Name != "" {
		t.Error("Plan changed the caller's VerityRoot")
	}
	req := Requirements(o)
	if !slices.Contains(req, "CONFIG_BLK_DEV_DM") || !slices.Contains(req, "CONFIG_DM_VERITY") {
		t.Errorf("requirements %q lack device-mapper and dm-verity", req)
	}
}
