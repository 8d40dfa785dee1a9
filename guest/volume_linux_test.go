package guest

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestDiskLabel reads the label of disk images mke2fs made, as the init
// reads a block device; probe passes over a data disk looking for the root.
func TestDiskLabel(t *testing.T) {
	fixtures.NeedTools(t, "mke2fs")
	img := func(label string) string {
		p := filepath.Join(t.TempDir(), "disk")
		if err := os.WriteFile(p, nil, 0o644); err != nil || os.Truncate(p, 8<<20) != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("mke2fs", "-q", "-F", "-t", "ext4", "-L", label, p).CombinedOutput(); err != nil {
			t.Fatalf("mke2fs: %v\n%s", err, out)
		}
		return p
	}
	for _, tc := range []struct {
		label string
		root  bool
	}{{"c2vm-vol-0", false}, {"rootfs", true}} {
		t.Run(tc.label, func(t *testing.T) {
			p := img(tc.label)
			if l, ok := diskLabel(p); l != tc.label || !ok {
				t.Errorf("label %q %v", l, ok)
			}
			if probe(p, "ext4") != tc.root {
				t.Errorf("probe as the root disk: %v, want %v", !tc.root, tc.root)
			}
		})
	}
	if _, ok := diskLabel("/nonexistent"); ok {
		t.Error("a missing device has a label")
	}
	// What the init's error says of each disk seen when none matched.
	zero := filepath.Join(t.TempDir(), "zero")
	if err := os.WriteFile(zero, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	for dev, want := range map[string]string{img("data"): `ext4 "data"`, img(""): "ext4, no label", zero: "not ext4"} {
		if got := describeDisk(dev); got != want {
			t.Errorf("describeDisk: %q, want %q", got, want)
		}
	}
}
