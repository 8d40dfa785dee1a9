package e2e

import (
	"context"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/vmdir"
)

// TestVerity is issue 13's --verity proof for direct kernel boot: the hash
// tree passes `veritysetup verify` with manifest.json's root hash, the VM
// boots through dm-verity and runs the container (c2vm run, which attaches
// rootfs.verity from the manifest); every direct-boot config carries the
// root hash as c2vm.roothash, and qemu.sh with another hash there stops
// before the container, naming both hashes; with one byte of a file's data flipped
// in rootfs.img, the VM (booted by qemu.sh, which attaches it too) never
// runs the container and says C2VM_INIT_ERROR naming dm-verity.
//
// Which byte: the squashfs writer lays out the superblock (96 bytes), the
// file data and fragment blocks, then the tables from inode_table_start
// (superblock offset 64); a byte halfway between is inside some file's
// compressed data, not in any metadata the mount reads. dm-verity checks
// a block only when it is read, so the init reads the whole verity device
// before mounting it: the container must not run even though it reads
// nothing but /etc/motd.
func TestVerity(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64", "qemu-system-aarch64", "veritysetup")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			dir := convertBusybox(t, arch, "--verity", "--cmd", `["/bin/sh","-c","cat /etc/motd; echo CONTAINER-RAN; exit 3"]`)
			m, err := vmdir.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Verity == nil || m.Artifacts[vmdir.Verity].Size == 0 {
				t.Fatalf("manifest.json has no verity record or %s artifact: %+v", vmdir.Verity, m.Verity)
			}
			img, hash := filepath.Join(dir, "rootfs.img"), filepath.Join(dir, m.Verity.File)
			verify := func() error {
				return exec.Command("veritysetup", "verify", img, hash, m.Verity.RootHash).Run()
			}
			if err := verify(); err != nil {
				t.Fatalf("veritysetup verify of the output: %v", err)
			}

			stdout, stderr, code := runVM(t, dir)
			if code != 3 || !strings.Contains(stdout, "hello from c2vm") || !strings.Contains(stdout, "CONTAINER-RAN") {
				t.Fatalf("verity boot: exit %d, want 3 with the container's output; stdout:\n%s\nstderr:\n%s", code, stdout, tail(stderr, 30))
			}

			// The root hash is on every direct-boot command line; qemu.sh
			// with another one refuses the root before mounting it.
			arg := plan.ArgRootHash + "=" + m.Verity.RootHash
			for _, f := range []string{"qemu.sh", "libvirt.xml", "xl.cfg", "firecracker.json"} {
				if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || !strings.Contains(string(b), arg) {
					t.Errorf("%s lacks %s (%v)", f, arg, err)
				}
			}
			wrong := strings.Repeat("0", len(m.Verity.RootHash))
			console := qemuScriptFile(t, dir, editedScript(t, dir, arg, plan.ArgRootHash+"="+wrong))
			refusedRoot(t, console, "dm-verity", m.Verity.RootHash, wrong)

			off := flipFileByte(t, img)
			if err := verify(); err == nil {
				t.Fatalf("veritysetup verify accepts rootfs.img with byte %d flipped", off)
			}
			refusedRoot(t, qemuScript(t, dir), "dm-verity")
		})
	}
}

// refusedRoot checks that a VM's console shows the container never ran
// (its script echoes CONTAINER-RAN) and an init error line containing
// each of want, with the init's failure status.
func refusedRoot(t *testing.T, console string, want ...string) {
	t.Helper()
	if strings.Contains(console, "CONTAINER-RAN") {
		t.Errorf("the container ran:\n%s", tail(console, 30))
	}
	i := strings.Index(console, plan.ErrorLine)
	if i < 0 {
		t.Errorf("no %s:\n%s", plan.ErrorLine, tail(console, 30))
		return
	}
	line, _, _ := strings.Cut(console[i:], "\n")
	t.Logf("the init refused: %s", line)
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("%s lacks %q", line, w)
		}
	}
	if got := exitStatus(t, console); got != plan.StatusInitFailed {
		t.Errorf("exit status %d, want %d", got, plan.StatusInitFailed)
	}
}

// editedScript writes a copy of dir's qemu.sh, beside it (it finds the
// artifacts from its own directory), with old replaced by new, and
// returns its name.
func editedScript(t *testing.T, dir, old, new string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "qemu.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("qemu.sh lacks %q", old)
	}
	const name = "qemu-edited.sh"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.ReplaceAll(string(b), old, new)), 0o755); err != nil {
		t.Fatal(err)
	}
	return name
}

// flipFileByte flips the byte halfway through a squashfs image's data
// area (see TestVerity), or through an erofs image (whose metadata comes
// first and is small: the middle is file data), and returns its offset.
func flipFileByte(t *testing.T, img string) int64 {
	t.Helper()
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb := make([]byte, 2048)
	if _, err := f.ReadAt(sb, 0); err != nil {
		t.Fatal(err)
	}
	var off, dataEnd int64
	switch {
	case string(sb[:4]) == "hsqs":
		dataEnd = int64(binary.LittleEndian.Uint64(sb[64:])) // inode_table_start
		off = (96 + dataEnd) / 2
	case binary.LittleEndian.Uint32(sb[1024:]) == 0xE0F5E1E2: // erofs_fs.h: magic, then blocks at 36
		dataEnd = int64(binary.LittleEndian.Uint32(sb[1024+36:])) * 4096
		off = dataEnd / 2
	default:
		t.Fatal("rootfs.img is neither squashfs nor erofs")
	}
	if dataEnd <= 96+2*4096 {
		t.Fatalf("data ends at %d: too little file data to corrupt", dataEnd)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped byte %d of rootfs.img (file data before %d)", off, dataEnd)
	return off
}

// qemuScript boots an output directory with its own qemu.sh under TCG and
// returns the console.
func qemuScript(t *testing.T, dir string) string {
	t.Helper()
	return qemuScriptFile(t, dir, "qemu.sh")
}

// qemuScriptFile is qemuScript for another script in dir.
func qemuScriptFile(t *testing.T, dir, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, script))
	cmd.Env = append(cmd.Environ(), "C2VM_ACCEL=tcg")
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("%s did not power off within 6m:\n%s", script, tail(string(out), 30))
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

// TestVerityReproducible: two conversions give the same hash tree and root
// hash, and the tree checks out against the root filesystem.
func TestVerityReproducible(t *testing.T) {
	fixtures.NeedTools(t, "veritysetup")
	var first *vmdir.Manifest
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), "vm")
		mustConvert(t, "oci:"+filepath.Join(fixtures.Dir(t), "busybox-amd64"), "--no-kernel", "--verity", "-o", dir)
		m, err := vmdir.ReadManifest(dir)
		if err != nil {
			t.Fatal(err)
		}
		if m.Verity == nil {
			t.Fatal("no verity record in manifest.json")
		}
		if out, err := exec.Command("veritysetup", "verify", filepath.Join(dir, "rootfs.img"), filepath.Join(dir, m.Verity.File), m.Verity.RootHash).CombinedOutput(); err != nil {
			t.Fatalf("veritysetup verify: %v\n%s", err, out)
		}
		if i == 0 {
			first = m
			continue
		}
		if *m.Verity != *first.Verity || m.Artifacts[vmdir.Verity] != first.Artifacts[vmdir.Verity] {
			t.Errorf("second conversion differs: %+v %+v vs %+v %+v", m.Verity, m.Artifacts[vmdir.Verity], first.Verity, first.Artifacts[vmdir.Verity])
		}
	}
}
