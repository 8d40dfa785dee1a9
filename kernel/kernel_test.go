package kernel

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/c2vm/c2vm/internal/testkernel"
)

// Tiny header fixtures, built from the boot protocols' documented offsets.
func bzImage(version string, x64 bool) []byte {
	b := make([]byte, 0x400)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x20e:], 0x100) // string at 0x300
	copy(b[0x300:], version+" (builder@host) #1 SMP\x00")
	if x64 {
		b[0x236] = 1
	}
	return b
}

func flatImage(magic, version string) []byte {
	b := make([]byte, 0x200)
	copy(b[0x38:], magic)
	copy(b[0x100:], "Linux version "+version+" (gcc)")
	return b
}

func TestIdentify(t *testing.T) {
	for _, tc := range []struct {
		name string
		img  []byte
		want Ident
		err  error
	}{
		{"bzImage 64", bzImage("6.1.0-28-cloud-amd64", true), Ident{"amd64", FormatBzImage, "6.1.0-28-cloud-amd64"}, nil},
		{"bzImage 32", bzImage("5.10.0-i386", false), Ident{"386", FormatBzImage, "5.10.0-i386"}, nil},
		{"arm64 Image", flatImage("ARM\x64", "6.6.1-yocto"), Ident{"arm64", FormatImage, "6.6.1-yocto"}, nil},
		{"riscv64 Image", flatImage("RSC\x05", "6.1.0-riscv64"), Ident{"riscv64", FormatImage, "6.1.0-riscv64"}, nil},
		{"gzip", []byte{0x1f, 0x8b, 8, 0}, Ident{}, ErrUnknownFormat},
		{"garbage", []byte("hello world, not a kernel"), Ident{}, ErrUnknownFormat},
		{"empty", nil, Ident{}, ErrUnknownFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Identify(tc.img)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("Identify = %+v, %v; want %+v, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseConfig(t *testing.T) {
	cfg := ParseConfig([]byte("# comment\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D=\"str\"\n"))
	if cfg["CONFIG_A"] != "y" || cfg["CONFIG_B"] != "m" || cfg["CONFIG_D"] != "str" || cfg["CONFIG_C"] != "" {
		t.Errorf("%v", cfg)
	}
}

func TestSoftdep(t *testing.T) {
	if got := softdepPre("pre: crc32c-intel crc32c_generic post: foo"); strings.Join(got, ",") != "crc32c_intel,crc32c_generic" {
		t.Errorf("%v", got)
	}
}

// TestDebianCloudKernels reads Debian's real packages: identity, config,
// the module closure for a boot, and (amd64) the vmlinux inside the
// bzImage.
func TestDebianCloudKernels(t *testing.T) {
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			k, err := Open(testkernel.Deb(t, arch))
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			if k.Arch != arch || !strings.HasSuffix(k.Version, "-cloud-"+arch) {
				t.Errorf("identified as %s %s", k.Arch, k.Version)
			}
			if err := k.CheckArch(map[string]string{"amd64": "arm64", "arm64": "amd64"}[arch]); !errors.Is(err, ErrWrongArch) {
				t.Errorf("CheckArch: %v", err)
			}
			if b, _ := k.Has("CONFIG_EXT4_FS"); !b {
				t.Error("Debian builds ext4 in; config not read")
			}
			mods, err := k.Closure([]string{"CONFIG_VIRTIO_PCI", "CONFIG_VIRTIO_BLK", "CONFIG_OVERLAY_FS", "CONFIG_EXT4_FS", "CONFIG_SQUASHFS"})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, m := range mods {
				names = append(names, m.Name)
				b, err := k.ReadModule(m)
				if err != nil || !bytes.HasPrefix(b, []byte("\x7fELF")) {
					t.Errorf("%s: not an uncompressed module: %v", m.Name, err)
				}
			}
			got := strings.Join(names, " ")
			// Dependencies first: virtio_ring and virtio before virtio_pci.
			for _, order := range [][2]string{{"virtio_ring", "virtio_pci"}, {"virtio", "virtio_blk"}} {
				if i, j := strings.Index(got, order[0]+" "), strings.Index(got, order[1]); i < 0 || j < 0 || i > j {
					t.Errorf("closure %q: want %s before %s", got, order[0], order[1])
				}
			}
			if strings.Contains(got, "ext4") {
				t.Errorf("ext4 is built in, yet in the closure: %s", got)
			}
			if _, err := k.Closure([]string{"CONFIG_NO_SUCH_THING"}); !errors.Is(err, ErrMissingFeature) || !strings.Contains(err.Error(), "CONFIG_NO_SUCH_THING") {
				t.Errorf("missing feature: %v", err)
			}
			if arch != "amd64" {
				return
			}
			var buf bytes.Buffer
			if err := k.Vmlinux(&buf); err != nil {
				t.Fatal(err)
			}
			f, err := elf.NewFile(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			if f.Machine != elf.EM_X86_64 || f.Entry == 0 {
				t.Errorf("vmlinux: machine %s entry %#x", f.Machine, f.Entry)
			}
		})
	}
}

func TestKernelInImageAndDirs(t *testing.T) {
	img := flatImage("ARM\x64", "6.6.1-yocto")
	cfg := []byte("CONFIG_VIRTIO_BLK=y\nCONFIG_OVERLAY_FS=y\n")
	fsys := fstest.MapFS{
		"boot/vmlinuz-6.6.1-yocto": {Data: img},
		"boot/config-6.6.1-yocto":  {Data: cfg},
	}
	k, err := FromFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if k.Arch != "arm64" || k.Version != "6.6.1-yocto" || k.Config["CONFIG_VIRTIO_BLK"] != "y" {
		t.Errorf("FromFS: %s %s %v", k.Arch, k.Version, k.Config)
	}
	if mods, err := k.Closure([]string{"CONFIG_VIRTIO_BLK", "CONFIG_OVERLAY_FS"}); err != nil || len(mods) != 0 {
		t.Errorf("built-ins need no modules: %v %v", mods, err)
	}
	if _, err := FromFS(fstest.MapFS{"etc/passwd": {}}); !errors.Is(err, ErrNoKernel) {
		t.Errorf("no kernel: %v", err)
	}
	// A Yocto deploy dir: Image and lib/modules/VER.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "Image"), img, 0o644)
	os.MkdirAll(filepath.Join(dir, "lib/modules/6.6.1-yocto"), 0o755)
	os.WriteFile(filepath.Join(dir, "lib/modules/6.6.1-yocto/config"), cfg, 0o644)
	k, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k.Arch != "arm64" || k.Config["CONFIG_OVERLAY_FS"] != "y" {
		t.Errorf("deploy dir: %s %v", k.Arch, k.Config)
	}
}
