package vmdir

import (
	"strings"
	"testing"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// TestKernelArgs: a --verity output's boots carry its root hash as
// c2vm.roothash, which the init reads back; others carry nothing.
func TestKernelArgs(t *testing.T) {
	hash := strings.Repeat("5a", 32)
	for _, tc := range []struct {
		name string
		m    Manifest
		want string
	}{
		{"no verity", Manifest{}, ""},
		{"verity", Manifest{Verity: &VerityInfo{RootHash: hash}}, hash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.m.KernelArgs()
			a, err := plan.ParseArgs(args)
			if err != nil || a.RootHash != tc.want {
				t.Errorf("KernelArgs() = %q: root hash %q, %v; want %q", args, a.RootHash, err, tc.want)
			}
		})
	}
}
