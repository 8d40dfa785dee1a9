package vmconfig

import (
	"regexp"
	"strings"
	"testing"
)

// TestVerityDisk checks that every config attaches the hash tree
// read-only right after the root disk, the data disks after it.
func TestVerityDisk(t *testing.T) {
	for _, tc := range []struct {
		target Target
		// in order: the root, the hash tree, the first data disk
		want []string
	}{
		{QEMUScript{}, []string{
			`/rootfs.img,if=virtio,format=raw,readonly=on`,
			`/rootfs.verity,if=virtio,format=raw,readonly=on`,
			`/data-0.img,if=virtio,format=raw"`}},
		{Libvirt{}, []string{
			`"/srv/vm/rootfs.img"></source>\s*<target dev="vda" bus="virtio"></target>\s*<readonly>`,
			`"/srv/vm/rootfs.verity"></source>\s*<target dev="vdb" bus="virtio"></target>\s*<readonly>`,
			`"/srv/vm/data-0.img"></source>\s*<target dev="vdc" bus="virtio"></target>\s*</disk>`}},
		{XL{}, []string{
			`vdev=xvda, access=ro, target=/srv/vm/rootfs.img`,
			`vdev=xvdb, access=ro, target=/srv/vm/rootfs.verity`,
			`vdev=xvdc, access=rw, target=/srv/vm/data-0.img`}},
		{Firecracker{}, []string{
			`"path_on_host": "/srv/vm/rootfs.img",\s*"is_root_device": false,\s*"is_read_only": true`,
			`"drive_id": "verity",\s*"path_on_host": "/srv/vm/rootfs.verity",\s*"is_root_device": false,\s*"is_read_only": true`,
			`"path_on_host": "/srv/vm/data-0.img"`}},
	} {
		t.Run(tc.target.Name(), func(t *testing.T) {
			vm := testVM("amd64")
			vm.Verity = "rootfs.verity"
			out := string(write(t, tc.target, vm))
			if tc.target.Name() == "qemu.sh" {
				out = strings.ReplaceAll(out, "\\\n\t", "")
			}
			last := -1
			for _, w := range tc.want {
				loc := regexp.MustCompile(w).FindStringIndex(out)
				if loc == nil {
					t.Fatalf("no %s in:\n%s", w, out)
				}
				if loc[0] <= last {
					t.Errorf("%s comes before the disk listed before it", w)
				}
				last = loc[0]
			}
		})
	}
}
