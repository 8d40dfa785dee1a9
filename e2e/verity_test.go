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
	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestVerity is issue 13's --verity proof for direct kernel boot: the hash
// tree passes `veritysetup verify` with manifest.json's root hash, the VM
// boots through dm-verity and runs the container (c2vm run, which attaches
// rootfs.verity from the manifest); with one byte of a file's data flipped
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
			m, err := convert.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Verity == nil || m.Artifacts[convert.VerityFile].Size == 0 {
				t.Fatalf("manifest.json has no verity record or %s artifact: %+v", convert.VerityFile, m.Verity)
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

			off := flipFileByte(t, img)
			if err := verify(); err == nil {
				t.Fatalf("veritysetup verify accepts rootfs.img with byte %d flipped", off)
			}
			console := qemuScript(t, dir)
			if strings.Contains(console, "CONTAINER-RAN") {
				t.Errorf("the container ran on a corrupted root:\n%s", tail(console, 30))
			}
			if !strings.Contains(console, plan.ErrorLine) || !strings.Contains(console[strings.Index(console, plan.ErrorLine):], "dm-verity") {
				t.Errorf("no %s naming dm-verity:\n%s", plan.ErrorLine, tail(console, 30))
			}
			if got := exitStatus(t, console); got != plan.StatusInitFailed {
				t.Errorf("exit status %d, want %d", got, plan.StatusInitFailed)
			}
		})
	}
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
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "qemu.sh"))
	cmd.Env = append(cmd.Environ(), "C2VM_ACCEL=tcg")
	out, _ := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("qemu.sh did not power off within 4m:\n%s", tail(string(out), 30))
	}
	return strings.ReplaceAll(string(out), "\r\n", "\n")
}

// TestVerityReproducible: two conversions give the same hash tree and root
// hash, and the tree checks out against the root filesystem.
func TestVerityReproducible(t *testing.T) {
	fixtures.NeedTools(t, "veritysetup")
	var first *convert.Manifest
	for i := range 2 {
		dir := filepath.Join(t.TempDir(), "vm")
		mustConvert(t, "oci:"+filepath.Join(fixtures.Dir(t), "busybox-amd64"), "--no-kernel", "--verity", "-o", dir)
		m, err := convert.ReadManifest(dir)
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
		if *m.Verity != *first.Verity || m.Artifacts[convert.VerityFile] != first.Artifacts[convert.VerityFile] {
			t.Errorf("second conversion differs: %+v %+v vs %+v %+v", m.Verity, m.Artifacts[convert.VerityFile], first.Verity, first.Artifacts[convert.VerityFile])
		}
	}
}
