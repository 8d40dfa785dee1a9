package e2e

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
)

// The three forms skopeo wrote of one image give the same rootfs.img bytes.
func TestInputFormsSameRootfs(t *testing.T) {
	fix := fixtures.Dir(t)
	for _, format := range convert.Formats() {
		t.Run(format, func(t *testing.T) {
			var first string
			for _, ref := range []string{
				"oci:" + filepath.Join(fix, "busybox-amd64"),
				"docker-archive:" + filepath.Join(fix, "busybox-amd64.docker.tar"),
				filepath.Join(fix, "busybox-amd64.oci-zstd.tar"),
			} {
				dir := filepath.Join(t.TempDir(), "vm")
				mustConvert(t, ref, "--no-kernel", "--rootfs", format, "-o", dir)
				img := filepath.Join(dir, "rootfs.img")
				if first == "" {
					first = img
					continue
				}
				if !sameFile(t, first, img) {
					t.Errorf("%s: rootfs.img differs from the OCI layout's", ref)
				}
			}
		})
	}
}

// debugfs runs one debugfs request against an ext4 image.
func debugfs(t *testing.T, img, req string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", req, img).CombinedOutput()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v\n%s", req, err, out)
	}
	return string(out)
}

// TestExt4Exact checks the ext4 rootfs with e2fsprogs' own tools: the
// metadata the layers carried survives a rootless conversion.
func TestExt4Exact(t *testing.T) {
	fixtures.NeedTools(t, "e2fsck", "debugfs")
	fix := fixtures.Dir(t)
	dir := filepath.Join(t.TempDir(), "vm")
	mustConvert(t, "oci:"+filepath.Join(fix, "busybox-amd64"), "--no-kernel", "--rootfs", "ext4", "-o", dir)
	img := filepath.Join(dir, "rootfs.img")
	if out, err := exec.Command("e2fsck", "-fn", img).CombinedOutput(); err != nil {
		t.Fatalf("e2fsck -fn: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		req  string
		want []string // regexps
	}{
		{"stat /usr/bin/suid-file", []string{`Mode:\s+04755`, `User:\s+0\s+Group:\s+0`}},
		{"stat /home/app/secret.txt", []string{`Mode:\s+0600`, `User:\s+1000\s+Group:\s+1000`}},
		{"stat /home/app", []string{`Type: directory`, `Mode:\s+0750`, `User:\s+1000`}},
		{"stat /etc/hard-a", []string{`Links: 2`}},
		{"stat /devnode/null", []string{`Type: character special`, `Device major/minor number: 01:03`}},
		{"ea_list /etc/xattr-file", []string{`user.c2vm.*hello`}},
		{"ls /opq", []string{`new.txt`}},
		{"cat /etc/motd", []string{`hello from c2vm`}},
	} {
		out := debugfs(t, img, tc.req)
		for _, w := range tc.want {
			if !regexp.MustCompile(w).MatchString(out) {
				t.Errorf("debugfs %s: no match for %s in:\n%s", tc.req, w, out)
			}
		}
	}
	for _, gone := range []string{"/gone.txt", "/opq/old.txt"} {
		if out := debugfs(t, img, "stat "+gone); !strings.Contains(out, "File not found") {
			t.Errorf("%s should be whited out, debugfs says:\n%s", gone, out)
		}
	}
	if out := debugfs(t, img, "ls -l /"); strings.Contains(out, ".wh.") {
		t.Errorf("whiteout files leaked into the image:\n%s", out)
	}
}

// TestReproducible: a full conversion (kernel, initramfs with modules,
// vmlinux, root filesystem, VM configs, manifest.json) into the same path
// twice gives the same files with the same bytes, in every root
// filesystem format, with SOURCE_DATE_EPOCH honoured. The same path: the
// VM configs name the artifacts by absolute path.
func TestReproducible(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	img := "oci:" + filepath.Join(fixtures.Dir(t), "busybox-amd64")
	kernel, init := testkernel.Deb(t, "amd64"), initFor(t, "amd64")
	for _, format := range convert.Formats() {
		t.Run(format, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "vm")
			saved := filepath.Join(t.TempDir(), "first")
			args := []string{img, "--kernel", kernel, "--init", init, "--rootfs", format, "-o", dir}
			mustConvert(t, args...)
			if err := os.Rename(dir, saved); err != nil {
				t.Fatal(err)
			}
			mustConvert(t, args...)
			compareDirs(t, saved, dir)
			for _, f := range []string{"initramfs.img", "vmlinux", "rootfs.img"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("no %s compared", f)
				}
			}
		})
	}
}

// compareDirs fails t unless the trees a and b hold the same files (the
// names, in subdirectories too, each way) with the same bytes.
func compareDirs(t *testing.T, a, b string) {
	t.Helper()
	fa, fb := treeFiles(t, a), treeFiles(t, b)
	if len(fa) == 0 {
		t.Fatal("empty output")
	}
	if !slices.Equal(fa, fb) {
		t.Fatalf("the runs wrote different files:\n%s\n%s", strings.Join(fa, " "), strings.Join(fb, " "))
	}
	for _, f := range fa {
		if !sameFile(t, filepath.Join(a, f), filepath.Join(b, f)) {
			t.Errorf("%s differs between two runs", f)
		}
	}
}

// treeFiles lists the files under root, relative to it, sorted.
func treeFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		out = append(out, rel)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBadInput: each bad input ends in one line naming the problem, a
// non-zero exit, and no output directory.
func TestBadInput(t *testing.T) {
	fix := fixtures.Dir(t)
	tmp := t.TempDir()
	notImage := filepath.Join(tmp, "not-an-image.txt")
	os.WriteFile(notImage, []byte("hello"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"not an image", []string{notImage}, "not an image"},
		{"missing file", []string{filepath.Join(tmp, "nope.tar")}, "no such file"},
		{"no platform", []string{"oci:" + filepath.Join(fix, "busybox-amd64"), "--platform", "linux/s390x"}, "linux/amd64"},
		{"missing user", []string{"oci:" + filepath.Join(fix, "busybox-amd64"), "--user", "nosuchuser"}, "nosuchuser"},
		{"bad rootfs format", []string{"oci:" + filepath.Join(fix, "busybox-amd64"), "--rootfs", "zfs"}, "zfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(tmp, strings.ReplaceAll(tc.name, " ", "-")+".vm")
			code, stderr := c2vm(t, append(append([]string{"convert", "-q", "--no-kernel"}, tc.args...), "-o", out)...)
			if code == 0 {
				t.Fatalf("exit 0, want failure")
			}
			if strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(strings.ToLower(stderr), strings.ToLower(tc.want)) {
				t.Errorf("stderr %q: want one line mentioning %q", stderr, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("output %s left behind", out)
			}
			if m, _ := filepath.Glob(filepath.Join(tmp, ".*.tmp-*")); len(m) > 0 {
				t.Errorf("temp dirs left behind: %v", m)
			}
		})
	}
}

// TestMultiPlatform: the nested multi-platform layout (index → index →
// manifests) gives each arch's own root filesystem; without --platform
// the host's (amd64) is chosen.
func TestMultiPlatform(t *testing.T) {
	fix := fixtures.Dir(t)
	convertTo := func(ref string, args ...string) string {
		dir := filepath.Join(t.TempDir(), "vm")
		mustConvert(t, append([]string{ref, "--no-kernel", "-o", dir}, args...)...)
		return filepath.Join(dir, "rootfs.img")
	}
	multi := "oci:" + filepath.Join(fix, "busybox-multi")
	if !sameFile(t, convertTo(multi, "--platform", "linux/arm64"), convertTo("oci:"+filepath.Join(fix, "busybox-arm64"))) {
		t.Error("linux/arm64 from the multi-platform index differs from the arm64 image")
	}
	if !sameFile(t, convertTo(multi), convertTo("oci:"+filepath.Join(fix, "busybox-amd64"))) {
		t.Error("the default platform is not the host's (amd64)")
	}
}
