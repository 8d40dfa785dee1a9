package kernel

import (
	"strings"
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

// TestLinuxKitDevConfig: a kernel without IKCONFIG takes its config from
// kernel-dev.tar's usr/src/linux-headers-VERSION/.config (the version's
// own when there are several); with none anywhere, it opens, and
// ConfigWarning names the options it cannot check while Closure loads
// the modules found by name.
func TestLinuxKitDevConfig(t *testing.T) {
	mods := tarOf(t, "lib/modules/6.6.1-linuxkit/kernel/fs/overlayfs/overlay.ko", elfModule([]byte("license=GPL\x00"), false, 0))
	dev := func(dir, cfg string) []byte { return tarOf(t, "usr/src/"+dir+"/.config", []byte(cfg)) }
	for _, tc := range []struct {
		name string
		dev  []byte // kernel-dev.tar; nil = none
		want string // CONFIG_OVERLAY_FS; "" = no config
	}{
		{"version's headers", dev("linux-headers-6.6.1-linuxkit", "CONFIG_OVERLAY_FS=m\n"), "m"},
		{"other headers dir", dev("linux-headers-6.6.0", "CONFIG_OVERLAY_FS=y\n"), "y"},
		{"no .config in it", tarOf(t, "usr/src/linux-headers-6.6.1-linuxkit/Makefile", []byte("x")), ""},
		{"no kernel-dev.tar", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"kernel": {Data: bzImage("6.6.1-linuxkit", true)}, "kernel.tar": {Data: mods}}
			if tc.dev != nil {
				fsys["kernel-dev.tar"] = &fstest.MapFile{Data: tc.dev}
			}
			k, err := FromLinuxKit(fsys)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			if got := k.Config["CONFIG_OVERLAY_FS"]; got != tc.want {
				t.Errorf("CONFIG_OVERLAY_FS=%q, want %q", got, tc.want)
			}
			opts := []string{"CONFIG_OVERLAY_FS", "CONFIG_SQUASHFS"}
			w := k.ConfigWarning(opts)
			if (w != "") != (tc.want == "") || tc.want == "" && !strings.Contains(w, "cannot check that it has CONFIG_OVERLAY_FS, CONFIG_SQUASHFS") {
				t.Errorf("ConfigWarning = %q", w)
			}
			if tc.want == "" {
				ms, err := k.Closure(opts)
				if err != nil || len(ms) != 1 || ms[0].Name != "overlay" {
					t.Errorf("Closure without a config = %v, %v; want overlay (found by name) alone", ms, err)
				}
			}
		})
	}
}
