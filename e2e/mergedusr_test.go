package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
)

// TestMergedUsr is issue 10's proof: an image whose base is merged-usr
// (bin -> usr/bin, as Debian 12, Ubuntu and Fedora are) and whose second
// layer writes bin/x through that symlink (as rules_oci, ko, apko and
// buildah add do) converts, and the VM runs /bin/x from usr/bin, as Docker
// and containerd would.
func TestMergedUsr(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "umoci", "qemu-system-x86_64", "qemu-system-aarch64")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			img := mergedUsrImage(t, arch)
			dir := filepath.Join(t.TempDir(), "vm")
			mustConvert(t, "oci:"+img, "--kernel", testkernel.Deb(t, arch), "--init", initFor(t, arch), "-o", dir)
			stdout, stderr, code := runVM(t, dir)
			if code != 42 {
				t.Errorf("exit %d, want 42; stderr:\n%s", code, tail(stderr, 30))
			}
			for _, want := range []string{"bin is a symlink\n", "x lives in /usr/bin\n", "merged-usr ok\n"} {
				if !strings.Contains(stdout, want) {
					t.Errorf("stdout %q lacks %q", stdout, want)
				}
			}
		})
	}
}

// mergedUsrScript is bin/x: only shell builtins, so it needs no applet
// links beyond sh.
const mergedUsrScript = `#!/bin/sh
[ -L /bin ] && echo "bin is a symlink"
[ -f /usr/bin/x ] && echo "x lives in /usr/bin"
echo "merged-usr ok"
exit 42
`

// mergedUsrImage builds the image with umoci as an OCI layout: layer 1 the
// merged-usr base with the fixture's static busybox in usr/bin, layer 2
// bin/x alone, config Cmd ["/bin/x"].
func mergedUsrImage(t *testing.T, arch string) string {
	t.Helper()
	bb := fixtureFile(t, filepath.Join(fixtures.Dir(t), "busybox-"+arch), "bin/busybox")
	base := entriesTar(t, []tarEntry{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "etc/group", mode: 0o644, body: "root:x:0:\n"},
		{name: "usr/", mode: 0o755},
		{name: "usr/bin/", mode: 0o755},
		{name: "usr/bin/busybox", mode: 0o755, body: string(bb)},
		{name: "usr/bin/sh", link: "busybox"},
		{name: "bin", link: "usr/bin"},
	})
	top := entriesTar(t, []tarEntry{{name: "bin/x", mode: 0o755, body: mergedUsrScript}})

	img := filepath.Join(t.TempDir(), "merged-usr")
	ref := img + ":latest"
	umoci(t, "init", "--layout", img)
	umoci(t, "new", "--image", ref)
	for i, l := range [][]byte{base, top} {
		p := filepath.Join(t.TempDir(), "layer.tar")
		if err := os.WriteFile(p, l, 0o644); err != nil {
			t.Fatal(err)
		}
		umoci(t, "raw", "add-layer", "--image", ref, p)
		t.Logf("layer %d: %d bytes", i+1, len(l))
	}
	umoci(t, "config", "--image", ref, "--os", "linux", "--architecture", arch,
		"--config.cmd", "/bin/x", "--created", "2023-11-14T22:13:20Z")
	return img
}

func umoci(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("umoci", args...).CombinedOutput(); err != nil {
		t.Fatalf("umoci %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// tarEntry is a file (body), a symlink (link) or, for a name ending in
// "/", a directory.
type tarEntry struct {
	name, body, link string
	mode             int64
}

func entriesTar(t *testing.T, es []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1700000000, 0)
	for _, e := range es {
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: mtime, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch {
		case e.link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.link, 0o777
		case strings.HasSuffix(e.name, "/"):
			h.Typeflag = tar.TypeDir
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fixtureFile reads one file out of the first layer of an OCI layout the
// fixtures script built (gzip, as umoci writes it).
func fixtureFile(t *testing.T, layout, name string) []byte {
	t.Helper()
	f, err := os.Open(layerBlobs(t, layout)[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s not in %s's first layer: %v", name, layout, err)
		}
		if path.Clean(strings.TrimPrefix(h.Name, "./")) == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
