package kernel

import (
	"testing"
	"testing/fstest"
)

func TestFromLinuxKit(t *testing.T) {
	mods := tarOf(t, "lib/modules/6.6.1-linuxkit/kernel/fs/overlayfs/overlay.ko", []byte("not elf"))
	for _, tc := range []struct {
		name    string
		fsys    fstest.MapFS
		isLK    bool
		version string // "" = FromLinuxKit fails
	}{
		{"bzImage and modules", fstest.MapFS{
			"kernel":     {Data: bzImage("6.6.1-linuxkit", true)},
			"kernel.tar": {Data: mods},
		}, true, "6.6.1-linuxkit"},
		{"no kernel.tar", fstest.MapFS{"kernel": {Data: bzImage("6.6.1", true)}}, false, ""},
		{"kernel.tar not a tar", fstest.MapFS{
			"kernel":     {Data: bzImage("6.6.1", true)},
			"kernel.tar": {Data: []byte("garbage")},
		}, true, ""},
		{"kernel not a kernel", fstest.MapFS{"kernel": {Data: []byte("garbage")}, "kernel.tar": {Data: mods}}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := IsLinuxKit(tc.fsys); got != tc.isLK {
				t.Fatalf("IsLinuxKit = %v, want %v", got, tc.isLK)
			}
			k, err := FromLinuxKit(tc.fsys)
			if tc.version == "" {
				if err == nil {
					k.Close()
					t.Fatal("FromLinuxKit succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			if k.Version != tc.version || k.Arch != "amd64" {
				t.Errorf("kernel %s %s, want amd64 %s", k.Arch, k.Version, tc.version)
			}
			if _, ok := k.mods["overlay"]; !ok {
				t.Errorf("modules %v lack overlay from kernel.tar", k.mods)
			}
		})
	}
}
