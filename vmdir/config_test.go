package vmdir

import (
	"reflect"
	"testing"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/vmconfig"
)

// TestTargetNames: vmconfig's targets write the files this package names.
func TestTargetNames(t *testing.T) {
	var got []string
	for _, tg := range vmconfig.All() {
		got = append(got, tg.Name())
	}
	for _, tg := range vmconfig.DiskTargets() {
		got = append(got, tg.Name())
	}
	want := []string{QEMUScript, Libvirt, XL, Firecracker, QEMUDiskScript, LibvirtDisk}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("vmconfig's targets are %v; vmdir names %v", got, want)
	}
}

// TestConfig: the VM of a manifest, as convert writes its configs and
// c2vm run boots it.
func TestConfig(t *testing.T) {
	fw := []plan.Forward{{Proto: "tcp", HostIP: "127.0.0.1", HostPort: 8080, GuestPort: 80}}
	for _, tc := range []struct {
		name string
		m    Manifest
		want vmconfig.VM
	}{
		{"amd64, verity, data disk", Manifest{VMArch: "amd64", Memory: 1024, CPUs: 2,
			Image: ImageInfo{ManifestDigest: "sha256:0123456789abcdef"}, Forwards: fw,
			DataDisks: []string{"data-0.img"}, Verity: &VerityInfo{File: Verity, RootHash: "ab"}},
			vmconfig.VM{Name: "c2vm-0123456789ab", Arch: "amd64", Memory: 1024, CPUs: 2, Dir: "/out",
				Kernel: Kernel, Initrd: Initramfs, Rootfs: Rootfs, Vmlinux: Vmlinux, Forwards: fw,
				DataDisks: []string{"data-0.img"}, Verity: Verity, Cmdline: "c2vm.roothash=ab"}},
		{"arm64: no vmlinux", Manifest{VMArch: "arm64", Image: ImageInfo{ManifestDigest: "sha256:ff"}},
			vmconfig.VM{Name: "c2vm-ff", Arch: "arm64", Dir: "/out", Kernel: Kernel, Initrd: Initramfs, Rootfs: Rootfs}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Config(&tc.m, "/out"); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Config =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}
