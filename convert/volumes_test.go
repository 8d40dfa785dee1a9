package convert

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/vmdir"
)

type stringContent string

func (s stringContent) Open() (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader(string(s))), nil
}

// volumeConversion is a conversion of an image with the given VOLUMEs
// whose /data holds a file of user 1000, writing into dir/out.
func volumeConversion(t *testing.T, dir string, volumes []string, o Options) *conversion {
	t.Helper()
	t0 := time.Unix(1700000000, 0)
	tree := rootfs.NewTree(rootfs.Inode{Mode: 0o755, ModTime: t0})
	tree.Add("data", &rootfs.Inode{Type: rootfs.TypeDir, Mode: 0o750, UID: 1000, GID: 1000, ModTime: t0})
	tree.Add("data/log", &rootfs.Inode{Type: rootfs.TypeRegular, Mode: 0o640, UID: 1000, GID: 1000, Size: 3, Content: stringContent("hi\n"), ModTime: t0})
	img := &image.Image{ConfigDigest: "sha256:0123", Config: ocispec.Image{Config: ocispec.ImageConfig{Volumes: map[string]struct{}{}}}}
	for _, v := range volumes {
		img.Config.Config.Volumes[v] = struct{}{}
	}
	st, err := newStage(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.abort)
	st.lock.release() // these tests hold several stages of one output at once
	if o.DataSize == 0 {
		o.DataSize = 32 << 20
	}
	o.Epoch = t0
	return &conversion{o: o, img: img, st: st, tree: tree}
}

func debugfsOut(t *testing.T, img, req string) string {
	t.Helper()
	out, _ := exec.Command("debugfs", "-R", req, img).CombinedOutput()
	return string(out)
}

func TestWriteVolumes(t *testing.T) {
	fixtures.NeedTools(t, "mke2fs", "debugfs", "e2fsck")
	c := volumeConversion(t, t.TempDir(), []string{"/var/lib/db", "/data"}, Options{Volumes: []string{"/srv"}})
	err := c.writeVolumes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vols, disks := c.volumes, c.manifest.DataDisks
	want := []bootcfg.Volume{{Path: "/data", Label: "c2vm-vol-0"}, {Path: "/srv", Label: "c2vm-vol-1"}, {Path: "/var/lib/db", Label: "c2vm-vol-2"}}
	if !reflect.DeepEqual(vols, want) || !reflect.DeepEqual(disks, []string{"data-0.img", "data-1.img", "data-2.img"}) {
		t.Fatalf("%v %v", vols, disks)
	}
	if !reflect.DeepEqual(c.manifest.DataDisks, disks) || c.manifest.Volumes[2] != (vmdir.VolumeInfo{Path: "/var/lib/db", Disk: "data-2.img", Label: "c2vm-vol-2"}) {
		t.Errorf("manifest: %v %v", c.manifest.DataDisks, c.manifest.Volumes)
	}
	data := c.st.path("data-0.img")
	if out := debugfsOut(t, data, "stat /log"); !strings.Contains(out, "User:  1000") || !strings.Contains(out, "Mode:  0640") {
		t.Errorf("seeded file:\n%s", out)
	}
	if out := debugfsOut(t, data, "stat /"); !strings.Contains(out, "Mode:  0750") || !strings.Contains(out, "User:  1000") {
		t.Errorf("volume root (copyOwnership):\n%s", out)
	}
	// A path the image lacks: an empty filesystem, 0755 root.
	if out := debugfsOut(t, c.st.path("data-2.img"), "stat /"); !strings.Contains(out, "Mode:  0755") || !strings.Contains(out, "User:     0") {
		t.Errorf("empty volume root:\n%s", out)
	}
	if out := debugfsOut(t, c.st.path("data-2.img"), "ls /"); strings.Contains(out, "lost+found") {
		t.Errorf("an empty volume shows more than the image has:\n%s", out)
	}
	entries, _ := os.ReadDir(c.st.dir)
	if len(entries) != 3 {
		t.Errorf("stage holds %v, want the three disks only", entries)
	}
}

// TestWriteVolumesRefusesBadPaths: a VOLUME that is not a plain path
// stops the conversion before any disk is written.
func TestWriteVolumesRefusesBadPaths(t *testing.T) {
	for _, v := range []string{`/data"`, "/data/../etc", "/a\nb", "/<x/>", "data", "/a;reboot"} {
		t.Run(v, func(t *testing.T) {
			c := volumeConversion(t, t.TempDir(), []string{"/ok", v}, Options{})
			if err := c.writeVolumes(context.Background()); !errors.Is(err, bootcfg.ErrBadVolume) {
				t.Errorf("got %v, want ErrBadVolume", err)
			}
			if entries, _ := os.ReadDir(c.st.dir); len(entries) != 0 {
				t.Errorf("wrote %v", entries)
			}
		})
	}
}

// TestDataDiskReuse: --data-disk copies an earlier disk into the new
// output and never touches it; an earlier output's disks are not
// replaced unless passed back.
func TestDataDiskReuse(t *testing.T) {
	fixtures.NeedTools(t, "mke2fs", "debugfs", "e2fsck", "tune2fs")
	dir := t.TempDir()
	first := volumeConversion(t, dir, []string{"/data"}, Options{})
	if err := first.writeVolumes(context.Background()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(first.st.path("manifest.json"), []byte("{}"), 0o644)
	if err := first.st.commit(); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "out", "data-0.img")
	before, _ := os.ReadFile(old)
	info, _ := os.Stat(old)

	again := volumeConversion(t, dir, []string{"/data"}, Options{})
	if err := again.writeVolumes(context.Background()); err == nil || !strings.Contains(err.Error(), "--data-disk "+old) {
		t.Errorf("replacing an output with a data disk: %v", err)
	}
	tooMany := volumeConversion(t, dir, []string{"/data"}, Options{DataDisks: []string{old, old}})
	if err := tooMany.writeVolumes(context.Background()); err == nil || !strings.Contains(err.Error(), "2 times") {
		t.Errorf("two disks for one volume: %v", err)
	}

	reuse := volumeConversion(t, dir, []string{"/data"}, Options{Volumes: []string{"/b"}, DataDisks: []string{old, old}})
	err := reuse.writeVolumes(context.Background())
	disks := reuse.manifest.DataDisks
	if err != nil {
		t.Fatal(err)
	}
	if len(disks) != 2 || !reuse.manifest.Volumes[1].Reused {
		t.Errorf("disks %v, manifest %v", disks, reuse.manifest.Volumes)
	}
	if out := debugfsOut(t, reuse.st.path("data-1.img"), "cat /log"); !strings.Contains(out, "hi") {
		t.Errorf("the copy lacks the data: %s", out)
	}
	after, _ := os.ReadFile(old)
	if fi, _ := os.Stat(old); !bytes.Equal(before, after) || !fi.ModTime().Equal(info.ModTime()) {
		t.Error("the reused disk changed")
	}
	// The upgrade in place: the new output replaces the old one, with the
	// data (the disk named by another spelling of its path).
	other := filepath.Join(dir, "out", "..", "out", ".", "data-0.img")
	upgrade := volumeConversion(t, dir, []string{"/data"}, Options{DataDisks: []string{other}})
	if err := upgrade.writeVolumes(context.Background()); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(upgrade.st.path("manifest.json"), []byte("{}"), 0o644)
	if err := upgrade.st.commit(); err != nil {
		t.Fatal(err)
	}
	if out := debugfsOut(t, old, "cat /log"); !strings.Contains(out, "hi") {
		t.Errorf("after the upgrade: %s", out)
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"1073741824", 1 << 30}, {"512M", 512 << 20}, {"2G", 2 << 30}, {"2g", 2 << 30},
		{"1GiB", 1 << 30}, {"64MB", 64 << 20}, {"4096B", 4096}, {"1T", 1 << 40}, {"16K", 16 << 10},
		{"", 0}, {"0", 0}, {"-1G", 0}, {"1.5G", 0}, {"G", 0}, {"1X", 0}, {"5iB", 0}, {"99999999999T", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := ParseSize(tc.in)
			if n != tc.want || (err == nil) != (tc.want != 0) {
				t.Errorf("got %d %v, want %d", n, err, tc.want)
			}
		})
	}
}
