package plan

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

func TestVolumeStepJSON(t *testing.T) {
	for _, tc := range []struct {
		step Step
		want string
	}{
		{Step{Action: &MountVolume{Label: "c2vm-vol-1", Path: "/var/lib/db", WaitSeconds: 10}},
			`{"op":"volume","label":"c2vm-vol-1","path":"/var/lib/db","waitSeconds":10}`},
		{Step{Action: &Unmount{Path: "/data"}, Optional: true}, `{"op":"unmount","optional":true,"path":"/data"}`},
	} {
		t.Run(tc.step.Op(), func(t *testing.T) {
			b, err := json.Marshal(tc.step)
			if err != nil || string(b) != tc.want {
				t.Fatalf("%s %v, want %s", b, err, tc.want)
			}
			var back Step
			if err := json.Unmarshal(b, &back); err != nil || back.String() != tc.step.String() {
				t.Errorf("back: %v %v", back, err)
			}
		})
	}
}

// TestExt4Label reads labels from the heads of filesystems mke2fs made,
// and from heads that are not ext4.
func TestExt4Label(t *testing.T) {
	fixtures.NeedTools(t, "mke2fs")
	head := func(label string) []byte {
		p := filepath.Join(t.TempDir(), "img")
		if err := os.WriteFile(p, nil, 0o644); err != nil || os.Truncate(p, 8<<20) != nil {
			t.Fatal(err)
		}
		args := []string{"-q", "-F", "-t", "ext4"}
		if label != "" {
			args = append(args, "-L", label)
		}
		if out, err := exec.Command("mke2fs", append(args, p)...).CombinedOutput(); err != nil {
			t.Fatalf("mke2fs: %v\n%s", err, out)
		}
		b, _ := os.ReadFile(p)
		return b[:HeadSize]
	}
	for _, tc := range []struct {
		name, label string
		head        []byte
		ok, data    bool
	}{
		{"data disk", "c2vm-vol-0", head("c2vm-vol-0"), true, true},
		{"16 bytes", "c2vm-vol-1234567", head("c2vm-vol-1234567"), true, true},
		{"other label", "rootfs", head("rootfs"), true, false},
		{"no label", "", head(""), true, false},
		{"zeros", "", make([]byte, HeadSize), false, false},
		{"short", "", head("c2vm-vol-0")[:1100], false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, ok := Ext4Label(tc.head)
			if l != tc.label || ok != tc.ok || IsDataDisk(tc.head) != tc.data {
				t.Errorf("got %q %v %v", l, ok, IsDataDisk(tc.head))
			}
		})
	}
	if VolumeLabel(3) != "c2vm-vol-3" {
		t.Error(VolumeLabel(3))
	}
}
