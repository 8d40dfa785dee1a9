package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
	"github.com/c2vm/c2vm/vmdir"
)

// TestDockerfile builds the repository's Dockerfile with buildah (there is
// no Docker engine here; Debian's buildah, chroot isolation) from local
// base images the test makes, a debootstrap tree as BASE_IMAGE and that
// tree plus the host's Go as GO_IMAGE, then converts the arm64 busybox
// fixture inside the built image with its entrypoint's c2vm. The image has
// no Go, so the conversion can only use the inits the build embedded; its
// output must equal, byte for byte, what this tree's c2vm writes for the
// same input.
func TestDockerfile(t *testing.T) {
	fixtures.NeedTools(t, "buildah", "debootstrap", "go", "tar")
	if os.Geteuid() != 0 {
		fixtures.Skip(t, "buildah --isolation chroot and debootstrap need root here (no subordinate ids set up)")
	}
	fix := fixtures.Dir(t)
	deb := testkernel.Deb(t, "arm64")
	bh := newBuildah(t)
	base, goImage := bh.baseImages(t)

	modcache := strings.TrimSpace(runTool(t, "", "go", "env", "GOMODCACHE"))
	// The build's `go mod download` wants every module go.mod names, those
	// of other GOOSes too (cobra's mousetrap, Windows only), which no
	// host build fetched: fetch them into the host's cache first.
	runTool(t, fixtures.RepoRoot(), "go", "mod", "download")
	tag := "localhost/c2vm-test/c2vm:" + filepath.Base(t.TempDir())
	// The module proxy is the host's module cache (file://): the build
	// needs no network but for the runtime stage's apt-get, which the
	// base images make unnecessary.
	bh.run(t, "bud", "--isolation", "chroot", "--pull=never", "--layers=false", "-q",
		"--build-arg", "GO_IMAGE="+goImage, "--build-arg", "BASE_IMAGE="+base,
		"--build-arg", "GOPROXY=file:///goproxy",
		"-v", filepath.Join(modcache, "cache", "download")+":/goproxy:ro",
		"-t", tag, "-f", filepath.Join(fixtures.RepoRoot(), "Dockerfile"), fixtures.RepoRoot())
	t.Cleanup(func() { bh.cmd("rmi", "-f", tag).Run() })

	if got := strings.TrimSpace(bh.run(t, "inspect", "--format", "{{.OCIv1.Config.Entrypoint}}", tag)); got != "[c2vm]" {
		t.Errorf("entrypoint %s, want [c2vm]", got)
	}
	ctr := strings.TrimSpace(bh.run(t, "from", "--pull=never", tag))
	t.Cleanup(func() { bh.cmd("rm", ctr).Run() })
	if out, err := bh.cmd("run", "--isolation", "chroot", ctr, "--", "sh", "-c", "command -v go").CombinedOutput(); err == nil {
		t.Fatalf("the runtime image has go (%s): the embedded inits would be untested", strings.TrimSpace(string(out)))
	}

	out := t.TempDir()
	bh.run(t, "run", "--isolation", "chroot",
		"-v", fix+":/fixtures:ro", "-v", deb+":/kernel.deb:ro", "-v", out+":/out",
		ctr, "--", "c2vm", "convert", "-q", "oci:/fixtures/busybox-arm64", "--platform", "linux/arm64",
		"--kernel", "/kernel.deb", "-o", "/out/busybox.vm")

	host := filepath.Join(t.TempDir(), "busybox.vm")
	mustConvert(t, "oci:"+filepath.Join(fix, "busybox-arm64"), "--platform", "linux/arm64", "--kernel", deb, "-o", host)
	for _, f := range []string{"kernel", "initramfs.img", "rootfs.img", "config.json", "qemu.sh"} {
		t.Run(f, func(t *testing.T) {
			if !sameFile(t, filepath.Join(out, "busybox.vm", f), filepath.Join(host, f)) {
				t.Errorf("%s differs between the container's c2vm and this tree's", f)
			}
		})
	}
	// The SBOM names the image as it was given; the kernel package by its
	// control file, whatever its file is called (/kernel.deb inside).
	t.Run(vmdir.SBOM, func(t *testing.T) {
		got, want := spdxBut(t, filepath.Join(out, "busybox.vm"), "oci:/fixtures/busybox-arm64"), spdxBut(t, host, "oci:"+filepath.Join(fix, "busybox-arm64"))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s differs beyond the image reference:\n%v\n%v", vmdir.SBOM, got, want)
		}
		if !strings.Contains(fmt.Sprint(got["packages"]), "pkg:deb/debian/linux-image-") {
			t.Errorf("%s names no Debian kernel package: %v", vmdir.SBOM, got["packages"])
		}
	})
	// The manifest names the image and the kernel as they were given, and
	// libvirt.xml, xl.cfg and firecracker.json name the output directory:
	// those paths differ.
	t.Run("manifest.json", func(t *testing.T) {
		got, err := vmdir.ReadManifest(filepath.Join(out, "busybox.vm"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := vmdir.ReadManifest(host)
		if err != nil {
			t.Fatal(err)
		}
		if got.Image.Ref != "oci:/fixtures/busybox-arm64" {
			t.Errorf("image ref %q, want the path inside the container", got.Image.Ref)
		}
		if got.Kernel == nil || want.Kernel == nil || got.Kernel.Source != "/kernel.deb" {
			t.Fatalf("kernel %+v, want one from /kernel.deb (and %+v)", got.Kernel, want.Kernel)
		}
		got.Image.Ref, want.Image.Ref = "", ""
		got.Kernel.Source, want.Kernel.Source = "", ""
		for _, f := range []string{"libvirt.xml", "xl.cfg", "firecracker.json", vmdir.SBOM} {
			delete(got.Artifacts, f)
			delete(want.Artifacts, f)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("manifest.json differs beyond the image path:\n%+v\n%+v", got, want)
		}
	})
}

// buildah runs buildah on a store of its own in $C2VM_CACHE/buildah, so
// the base images persist between runs and the host's store is left alone.
type buildah struct{ root, runroot string }

func newBuildah(t *testing.T) buildah {
	t.Helper()
	dir := filepath.Join(cacheDir(t), "buildah")
	b := buildah{root: filepath.Join(dir, "storage"), runroot: filepath.Join(dir, "run")}
	if err := os.MkdirAll(b.runroot, 0o700); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b buildah) cmd(args ...string) *exec.Cmd {
	return exec.Command("buildah", append([]string{"--root", b.root, "--runroot", b.runroot, "--storage-driver", "overlay"}, args...)...)
}

func (b buildah) run(t *testing.T, args ...string) string {
	t.Helper()
	cmd := b.cmd(args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("buildah %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return string(out)
}

func (b buildah) exists(image string) bool {
	return b.cmd("inspect", "--type", "image", image).Run() == nil
}

var baseMu sync.Mutex

// baseImages makes, once per store, BASE_IMAGE (a debootstrap'd Debian 12
// minbase with what the runtime stage would install) and GO_IMAGE (that
// plus the host's GOROOT at /usr/local/go), named after the host's Go.
func (b buildah) baseImages(t *testing.T) (base, goImage string) {
	t.Helper()
	baseMu.Lock()
	defer baseMu.Unlock()
	base = "localhost/c2vm-test/debian:bookworm"
	goroot := strings.TrimSpace(runTool(t, "", "go", "env", "GOROOT"))
	goImage = "localhost/c2vm-test/go:" + runtime.Version()
	const path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	if !b.exists(base) {
		tree := debianTree(t)
		c := strings.TrimSpace(b.run(t, "from", "scratch"))
		defer b.cmd("rm", c).Run()
		b.run(t, "add", c, tree, "/")
		b.run(t, "config", "--env", path, "--cmd", "/bin/bash", c)
		b.run(t, "commit", "-q", "--rm", c, base)
	}
	if !b.exists(goImage) {
		c := strings.TrimSpace(b.run(t, "from", "--pull=never", base))
		defer b.cmd("rm", c).Run()
		b.run(t, "copy", "-q", c, goroot, "/usr/local/go")
		b.run(t, "config", "--env", "PATH=/usr/local/go/bin:"+strings.TrimPrefix(path, "PATH="), c)
		b.run(t, "commit", "-q", "--rm", c, goImage)
	}
	return base, goImage
}

// debianTree is a tar of `debootstrap --variant=minbase bookworm` from
// deb.debian.org with the runtime stage's packages, made once into
// $C2VM_CACHE/buildah.
func debianTree(t *testing.T) string {
	t.Helper()
	// The name changes with the package list (qemu-utils and
	// systemd-boot-efi for --disk, which push needs), so an older cached
	// tree is not taken for it.
	return debootstrapTree(t, "debian-bookworm-minbase-disk.tar", "ca-certificates,e2fsprogs,xz-utils,qemu-utils,systemd-boot-efi")
}

// debootstrapTree is a tar of a bookworm minbase with the packages
// include names (comma-separated), made once into $C2VM_CACHE/buildah as
// name.
func debootstrapTree(t *testing.T, name, include string) string {
	t.Helper()
	dir := filepath.Join(cacheDir(t), "buildah")
	tarball := filepath.Join(dir, name)
	if _, err := os.Stat(tarball); err == nil {
		return tarball
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(dir, "debootstrap-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	runTool(t, "", "debootstrap", "--variant=minbase", "--include="+include,
		"bookworm", root, "http://deb.debian.org/debian")
	runTool(t, "", "tar", "-C", root, "--numeric-owner", "-cf", filepath.Join(tmp, "rootfs.tar"), ".")
	if err := os.Rename(filepath.Join(tmp, "rootfs.tar"), tarball); err != nil {
		t.Fatal(err)
	}
	return tarball
}

// runTool runs a command in dir and returns its stdout, failing t with its
// stderr.
func runTool(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// spdxBut reads DIR's SBOM as JSON with the image reference ref, and the
// namespace made from it, taken out.
func spdxBut(t *testing.T, dir, ref string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, vmdir.SBOM))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(bytes.ReplaceAll(b, []byte(strconv.Quote(ref)), []byte(`"IMAGE"`)), &doc); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	if doc["name"] != "IMAGE" {
		t.Errorf("%s: the SBOM is named %v, want the image reference %q", dir, doc["name"], ref)
	}
	delete(doc, "documentNamespace")
	return doc
}
