package e2e

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
	"github.com/c2vm/c2vm/vmdir"
)

var (
	c2vmBinOnce sync.Once
	c2vmBin     string
	c2vmBinErr  error
)

// c2vmBinary builds cmd/c2vm once: the tests that need their own process
// environment (a proxy) run it as a subprocess, because net/http reads
// HTTPS_PROXY only once per process.
func c2vmBinary(t testing.TB) string {
	t.Helper()
	fixtures.NeedTools(t, "go")
	c2vmBinOnce.Do(func() {
		c2vmBin = filepath.Join(initDir, "c2vm")
		cmd := exec.Command("go", "build", "-o", c2vmBin, "./cmd/c2vm")
		cmd.Dir = fixtures.RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			c2vmBinErr = err
			t.Logf("%s", out)
		}
	})
	if c2vmBinErr != nil {
		t.Fatalf("building c2vm: %v", c2vmBinErr)
	}
	return c2vmBin
}

// refusingProxy is the address of a listener that closes every
// connection: HTTPS_PROXY and HTTP_PROXY pointed at it block the network.
func refusingProxy(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return "http://" + l.Addr().String()
}

// offline runs the c2vm binary with the network blocked by a refusing
// proxy and C2VM_CACHE=cache; it returns the exit code and stderr.
func offline(t *testing.T, cache string, args ...string) (int, string) {
	t.Helper()
	proxy := refusingProxy(t)
	cmd := exec.Command(c2vmBinary(t), args...)
	cmd.Env = append(os.Environ(), "C2VM_CACHE="+cache, "HTTPS_PROXY="+proxy, "HTTP_PROXY="+proxy,
		"https_proxy="+proxy, "http_proxy="+proxy, "NO_PROXY=", "no_proxy=", "C2VM_DEBIAN_MIRROR=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), stderr.String()
		}
		t.Fatal(err)
	}
	return 0, stderr.String()
}

// TestDefaultKernel is issue 11's first proof: `c2vm convert` of a
// docker-archive for linux/arm64 with no --kernel fetches Debian's cloud
// kernel from deb.debian.org into an empty cache, checks it, records it
// in manifest.json, and the VM runs; a second conversion with the network
// blocked takes the same kernel bytes from the cache; with an empty cache
// and no network, convert fails in one line and writes nothing.
func TestDefaultKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("downloads a kernel and boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-aarch64")
	image := "docker-archive:" + filepath.Join(fixtures.Dir(t), "busybox-arm64.docker.tar")
	initBin := initFor(t, "arm64")
	c2vmBinary(t) // built before the clock of the first conversion starts
	cache := t.TempDir()
	t.Setenv("C2VM_CACHE", cache)
	t.Setenv("C2VM_DEBIAN_MIRROR", "")

	first := filepath.Join(t.TempDir(), "first.vm")
	start := time.Now()
	code, stderr := c2vm(t, "convert", "--platform", "linux/arm64", "--init", initBin, "-o", first,
		"--cmd", `["/bin/sh","-c","echo default kernel; uname -m; exit 9"]`, image)
	t.Logf("first conversion (empty cache, download included): %s", time.Since(start).Round(time.Millisecond))
	if code != 0 {
		t.Fatalf("convert: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "kernel: Debian bookworm linux-image-") || !strings.Contains(stderr, "(downloaded: ") {
		t.Errorf("convert does not say where the kernel came from:\n%s", stderr)
	}
	m, err := vmdir.ReadManifest(first)
	if err != nil {
		t.Fatal(err)
	}
	src := m.Kernel.Debian
	if src == nil || m.Kernel.Source != "debian:bookworm="+src.Version || src.Mirror != "https://deb.debian.org/debian" || src.Suite != "bookworm" ||
		!strings.HasSuffix(src.Package, "-cloud-arm64") || src.Version == "" || len(src.SHA256) != 64 {
		t.Fatalf("manifest kernel source = %+v", src)
	}
	t.Logf("kernel source: %+v", *src)

	stdout, runErr, code := runVM(t, first)
	if code != 9 || !strings.Contains(stdout, "default kernel\naarch64\n") {
		t.Errorf("c2vm run: exit %d stdout %q, want 9 and the greeting; stderr:\n%s", code, stdout, runErr)
	}

	t.Run("cached, network blocked", func(t *testing.T) {
		second := filepath.Join(t.TempDir(), "second.vm")
		start := time.Now()
		code, stderr := offline(t, cache, "convert", "--platform", "linux/arm64", "--init", initBin, "-o", second, image)
		t.Logf("second conversion (cached): %s", time.Since(start).Round(time.Millisecond))
		if code != 0 {
			t.Fatalf("convert: exit %d: %s", code, stderr)
		}
		if !strings.Contains(stderr, "(cached: ") {
			t.Errorf("second conversion did not use the cache:\n%s", stderr)
		}
		if !sameFile(t, filepath.Join(first, "kernel"), filepath.Join(second, "kernel")) {
			t.Errorf("the cached kernel differs from the downloaded one")
		}
		pinned := filepath.Join(t.TempDir(), "pinned.vm")
		code, stderr = offline(t, cache, "convert", "--platform", "linux/arm64", "--init", initBin, "-o", pinned,
			"--kernel", "debian:bookworm="+src.Version, image)
		if code != 0 {
			t.Fatalf("pinned convert: exit %d: %s", code, stderr)
		}
	})

	t.Run("offline, empty cache", func(t *testing.T) {
		empty := t.TempDir()
		out := filepath.Join(t.TempDir(), "never.vm")
		code, stderr := offline(t, empty, "convert", "-q", "--platform", "linux/arm64", "--init", initBin, "-o", out, image)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code == 0 || len(lines) != 1 || !strings.Contains(stderr, "--kernel") || !strings.Contains(stderr, empty) {
			t.Fatalf("exit %d, stderr %q: want non-zero and one line naming --kernel and the cache %s", code, stderr, empty)
		}
		t.Logf("offline error: %s", lines[0])
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("offline convert wrote %s", out)
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("offline convert wrote into the cache: %v", ents)
		}
		if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
			t.Errorf("offline convert left %v beside the output", ents)
		}
	})
}

// kernelImage builds, with umoci, a one-layer image for linux/amd64
// holding Debian's cloud kernel in LinuxKit's layout (/kernel,
// /kernel.tar with lib/modules, /kernel-dev.tar with the config; for
// "linuxkit-noconfig" no config at all) or a distro's (/boot/vmlinuz-*
// and /lib/modules).
func kernelImage(t *testing.T, layout string) string {
	t.Helper()
	fixtures.NeedTools(t, "umoci", "dpkg-deb", "tar")
	x := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", testkernel.Deb(t, "amd64"), x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	vmlinuz, _ := filepath.Glob(filepath.Join(x, "boot", "vmlinuz-*"))
	if len(vmlinuz) != 1 {
		t.Fatalf("kernel package has %d vmlinuz", len(vmlinuz))
	}
	tarArgs := []string{"--numeric-owner", "--owner=0", "--group=0", "--mtime=@1700000000", "--sort=name"}
	root := x
	members := []string{"boot", "lib"}
	if strings.HasPrefix(layout, "linuxkit") {
		root = t.TempDir()
		if err := os.Rename(vmlinuz[0], filepath.Join(root, "kernel")); err != nil {
			t.Fatal(err)
		}
		tarTo(t, filepath.Join(root, "kernel.tar"), x, append(tarArgs, "lib")...)
		members = []string{"kernel", "kernel.tar"}
		// Debian's kernel has no CONFIG_IKCONFIG: its config travels as
		// linuxkit/kernel ships a build's, in kernel-dev.tar beside the
		// headers (usr/src/linux-headers-V/.config), or not at all.
		if layout == "linuxkit" {
			v := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
			dev := filepath.Join(t.TempDir(), "usr", "src", "linux-headers-"+v)
			if err := os.MkdirAll(dev, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(filepath.Join(x, "boot", "config-"+v), filepath.Join(dev, ".config")); err != nil {
				t.Fatal(err)
			}
			tarTo(t, filepath.Join(root, "kernel-dev.tar"), filepath.Dir(filepath.Dir(filepath.Dir(dev))), append(tarArgs, "usr")...)
			members = append(members, "kernel-dev.tar")
		}
	}
	layer := filepath.Join(t.TempDir(), "layer.tar")
	tarTo(t, layer, root, append(tarArgs, members...)...)
	img := filepath.Join(t.TempDir(), "kernel-"+layout)
	ref := img + ":latest"
	umoci(t, "init", "--layout", img)
	umoci(t, "new", "--image", ref)
	umoci(t, "raw", "add-layer", "--image", ref, layer)
	umoci(t, "config", "--image", ref, "--os", "linux", "--architecture", "amd64", "--created", "2023-11-14T22:13:20Z")
	return img
}

// tarTo writes tar -C dir ARGS into file.
func tarTo(t *testing.T, file, dir string, args ...string) {
	t.Helper()
	if out, err := exec.Command("tar", append([]string{"-C", dir, "-cf", file}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("tar %s: %v\n%s", file, err, out)
	}
}

// TestKernelImage: --kernel takes a kernel shipped as a container image,
// in LinuxKit's layout or a distro's; the VM boots and manifest.json
// names the kernel image.
func TestKernelImage(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64")
	for _, layout := range []string{"linuxkit", "linuxkit-noconfig", "distro"} {
		t.Run(layout, func(t *testing.T) {
			img := kernelImage(t, layout)
			dir := filepath.Join(t.TempDir(), "busybox.vm")
			code, stderr := c2vm(t, "convert", "--init", initFor(t, "amd64"), "--kernel", "oci:"+img, "-o", dir,
				"--cmd", `["/bin/sh","-c","echo kernel from an image; exit 4"]`,
				"oci:"+filepath.Join(fixtures.Dir(t), "busybox-amd64"))
			if code != 0 {
				t.Fatalf("convert: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stderr, "("+strings.TrimSuffix(layout, "-noconfig")+" layout)") {
				t.Errorf("convert does not name the %s layout:\n%s", layout, stderr)
			}
			// Without a config c2vm cannot check the kernel: it says so and
			// goes on, loading the modules it finds by name.
			warned := strings.Contains(stderr, "warning: kernel 6.") && strings.Contains(stderr, "no config found") && strings.Contains(stderr, "cannot check that it has CONFIG_")
			if warned != (layout == "linuxkit-noconfig") {
				t.Errorf("config warning given: %v, want %v:\n%s", warned, layout == "linuxkit-noconfig", stderr)
			}
			m, err := vmdir.ReadManifest(dir)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kernel.Image == nil || m.Kernel.Image.Ref != "oci:"+img || !strings.HasPrefix(m.Kernel.Image.ManifestDigest, "sha256:") || len(m.Kernel.Modules) == 0 {
				t.Errorf("manifest kernel = %+v", m.Kernel)
			}
			stdout, stderr, code := runVM(t, dir)
			if code != 4 || !strings.Contains(stdout, "kernel from an image\n") {
				t.Errorf("c2vm run: exit %d stdout %q; stderr:\n%s", code, stdout, stderr)
			}
		})
	}
}
