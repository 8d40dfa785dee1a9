package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
	"github.com/c2vm/c2vm/vmconfig"
	"github.com/c2vm/c2vm/vmimage"
)

// countingProxy stands in front of a registry and counts the bytes of
// blob upload bodies (PATCH and PUT to /blobs/uploads/), so a test sees
// what a push sent, whatever the client says.
func countingProxy(t *testing.T, host string) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && r.Body != nil {
			r.Body = countingBody{r.Body, &n}
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), &n
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countingBody) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// pushResult is `c2vm push --json`'s document.
type pushResult struct {
	Ref, Digest, Pinned string
	Platforms           []string
	Uploaded            int64
	Volumes             []struct{ Path, Pinned string }
}

// pushVM runs c2vm push --json with the registry's credentials.
func pushVM(t *testing.T, reg registry, host, dir, repo string, extra ...string) pushResult {
	t.Helper()
	start := time.Now()
	code, stdout, stderr := run(append([]string{"push", "-q", "--json", "--creds", reg.creds(), "--tls-verify=false", dir, "docker://" + host + "/" + repo}, extra...)...)
	if code != 0 {
		t.Fatalf("c2vm push: exit %d: %s", code, stderr)
	}
	var r pushResult
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("push --json: %v: %s", err, stdout)
	}
	t.Logf("c2vm push %s: %s in %s, %d layer bytes uploaded", repo, r.Digest, time.Since(start).Round(time.Millisecond), r.Uploaded)
	return r
}

// skopeoToLayout copies ref into an OCI layout with skopeo and returns
// the layout's directory.
func skopeoToLayout(t *testing.T, reg registry, ref string, extra ...string) string {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "layout")
	args := append([]string{"copy", "-q", "--src-creds", reg.creds(), "--src-tls-verify=false"}, extra...)
	if out, err := exec.Command("skopeo", append(args, "docker://"+ref, "oci:"+layout+":vm")...).CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	return layout
}

// layoutManifest reads the one manifest of an OCI layout skopeo wrote.
func layoutManifest(t *testing.T, layout string) (m struct {
	Annotations map[string]string
	Layers      []struct {
		Digest      string
		MediaType   string
		Annotations map[string]string
	}
}) {
	t.Helper()
	var idx struct{ Manifests []struct{ Digest string } }
	readJSON(t, filepath.Join(layout, "index.json"), &idx)
	if len(idx.Manifests) != 1 {
		t.Fatalf("layout index: %+v", idx)
	}
	readJSON(t, blobPath(layout, idx.Manifests[0].Digest), &m)
	return m
}

func blobPath(layout, digest string) string {
	return filepath.Join(layout, "blobs", strings.Replace(digest, ":", "/", 1))
}

func readJSON(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

// TestPushContainerDisk is issue 21's proof on both arches: a converted
// VM pushed to a real registry with auth is a KubeVirt containerDisk —
// skopeo reads it, GNU tar lists the disk alone in /disk/ as
// -r--r----- 107/107, and the disk umoci unpacks boots under UEFI as
// KubeVirt starts it (behind a qcow2 overlay) and runs the container. A
// second push gives the same digest and sends no blob byte; pulled back,
// the directory is byte for byte the pushed one and `c2vm run` of it
// gives the container's status.
func TestPushContainerDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "skopeo", "umoci", "tar", "qemu-img")
	reg := startRegistry(t)
	for _, goarch := range []string{"amd64", "arm64"} {
		t.Run(goarch, func(t *testing.T) {
			a, _ := arch.VM(goarch)
			if _, err := os.Stat(a.EFI.Firmware); err != nil {
				fixtures.Skip(t, "firmware %s: apt-get install %s", a.EFI.Firmware, a.EFI.FirmwarePackage)
			}
			dir := convertBusybox(t, goarch, "--disk", "qcow2", "--efi-stub", efiStub(t, goarch),
				"--cmd", `["/bin/sh","-c","echo pushed-vm-ran on $(uname -m); exit 7"]`)
			host, sent := countingProxy(t, reg.host)
			repo := "vm/busybox-" + goarch
			first := pushVM(t, reg, host, dir, repo+":v1")
			firstSent := sent.Swap(0)
			again := pushVM(t, reg, host, dir, repo+":v1")
			if again.Digest != first.Digest || sent.Load() != 0 || again.Uploaded != 0 {
				t.Errorf("second push: digest %s (first %s); %d bytes sent to the registry (first push: %d)", again.Digest, first.Digest, sent.Load(), firstSent)
			}
			t.Logf("first push sent %d bytes, the second %d", firstSent, sent.Load())
			layout := skopeoToLayout(t, reg, reg.host+"/"+repo+":v1")
			disk := checkContainerDisk(t, layout)
			bootContainerDisk(t, goarch, disk, "pushed-vm-ran", 7)

			pulled := filepath.Join(t.TempDir(), "pulled.vm")
			if code, _, stderr := run("pull", "-q", "--creds", reg.creds(), "--tls-verify=false", "docker://"+first.Pinned, "-o", pulled); code != 0 {
				t.Fatalf("c2vm pull: exit %d: %s", code, stderr)
			}
			sameOutputs(t, dir, pulled)
			stdout, stderr, code := runVM(t, pulled)
			if code != 7 || !strings.Contains(stdout, "pushed-vm-ran") {
				t.Errorf("c2vm run of the pulled VM: exit %d, stdout %q, stderr %s", code, stdout, tail(stderr, 20))
			}
		})
	}
}

// checkContainerDisk reads a pushed VM image from an OCI layout as a
// containerDisk: the first layer, listed by GNU tar, is /disk/ with one
// file, 107:107 and 0440; umoci unpacks the image, and the disk's path
// in the unpacked root is returned.
func checkContainerDisk(t *testing.T, layout string) string {
	t.Helper()
	m := layoutManifest(t, layout)
	if m.Annotations["io.c2vm.vm"] != "1" || len(m.Layers) != 2 || m.Layers[0].Annotations["io.c2vm.layer"] != "disk" {
		t.Fatalf("manifest: %+v", m)
	}
	out, err := exec.Command("tar", "-tvzf", blobPath(layout, m.Layers[0].Digest)).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tvzf: %v: %s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], "-r--r----- 107/107 ") || !strings.HasSuffix(lines[1], " disk/disk.qcow2") {
		t.Errorf("the disk layer, as GNU tar lists it:\n%s", out)
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	umoci(t, "unpack", "--rootless", "--image", layout+":vm", bundle)
	return filepath.Join(bundle, "rootfs", "disk", "disk.qcow2")
}

// bootContainerDisk boots disk as KubeVirt does: a qcow2 overlay over the
// containerDisk's file (left untouched), UEFI firmware, virtio-blk; the
// console must show marker and the container's status.
func bootContainerDisk(t *testing.T, goarch, disk, marker string, status int) {
	t.Helper()
	overlay := filepath.Join(t.TempDir(), "overlay.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", disk, overlay).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	args, err := vmconfig.QEMUDiskArgs(vmconfig.DiskVM{VM: vmconfig.VM{Arch: goarch}, Disk: overlay, Format: "qcow2"}, "tcg", "")
	if err != nil {
		t.Fatal(err)
	}
	console, took := bootUntil(t, goarch, args, marker)
	t.Logf("UEFI boot of the containerDisk to the container's first line: %s", took.Round(time.Millisecond))
	if got := exitStatus(t, console); got != status {
		t.Errorf("exit status %d, want %d", got, status)
	}
}

// TestPushMultiPlatform: a --platform all directory is pushed as one
// index naming each platform's os and architecture; pulled whole, it is
// the directory byte for byte, and --platform fetches one platform's.
func TestPushMultiPlatform(t *testing.T) {
	fixtures.NeedTools(t, "skopeo", "jq")
	multi := "oci:" + filepath.Join(fixtures.Dir(t), "busybox-multi") + ":latest"
	var kernels, inits, stubs []string
	for _, a := range []string{"amd64", "arm64"} {
		kernels = append(kernels, a+"="+testkernel.Deb(t, a))
		inits = append(inits, a+"="+initFor(t, a))
		stubs = append(stubs, a+"="+efiStub(t, a))
	}
	all := filepath.Join(t.TempDir(), "all.vm")
	mustConvert(t, "--platform", "linux/amd64,linux/arm64", "--kernel", strings.Join(kernels, ","), "--init", strings.Join(inits, ","),
		"--efi-stub", strings.Join(stubs, ","), "--disk", "qcow2", "-o", all, multi)
	reg := startRegistry(t)
	r := pushVM(t, reg, reg.host, all, "vm/multi:v1")
	out, err := exec.Command("skopeo", "inspect", "--raw", "--creds", reg.creds(), "--tls-verify=false", "docker://"+reg.host+"/vm/multi:v1").CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo inspect: %v: %s", err, out)
	}
	jq(t, string(out), `.mediaType == "application/vnd.oci.image.index.v1+json"
		and ([.manifests[].platform | .os + "/" + .architecture] == ["linux/amd64", "linux/arm64"])
		and (.annotations["io.c2vm.vm"] == "1")`)
	pulled := filepath.Join(t.TempDir(), "pulled.vm")
	if code, _, stderr := run("pull", "-q", "--creds", reg.creds(), "--tls-verify=false", "docker://"+r.Pinned, "-o", pulled); code != 0 {
		t.Fatalf("c2vm pull: exit %d: %s", code, stderr)
	}
	if !sameFile(t, filepath.Join(all, "manifest.json"), filepath.Join(pulled, "manifest.json")) {
		t.Error("the top manifest.json differs")
	}
	for _, sub := range []string{"linux-amd64", "linux-arm64"} {
		sameOutputs(t, filepath.Join(all, sub), filepath.Join(pulled, sub))
	}
	one := filepath.Join(t.TempDir(), "arm64.vm")
	if code, _, stderr := run("pull", "-q", "--platform", "linux/arm64", "--creds", reg.creds(), "--tls-verify=false", "docker://"+reg.host+"/vm/multi:v1", "-o", one); code != 0 {
		t.Fatalf("c2vm pull --platform linux/arm64: exit %d: %s", code, stderr)
	}
	sameOutputs(t, filepath.Join(all, "linux-arm64"), one)
}

// TestPushErrors: wrong credentials are one line and leave no tag; a
// directory without a disk is refused naming --disk qcow2; a plain
// container image is not pulled as a VM; nothing is written.
func TestPushErrors(t *testing.T) {
	fixtures.NeedTools(t, "skopeo")
	reg := startRegistry(t)
	noCredentials(t)
	plain := convertBusybox(t, "amd64")
	code, _, stderr := run("push", "-q", "--tls-verify=false", "--creds", reg.creds(), plain, "docker://"+reg.host+"/vm/nodisk:v1")
	if code != 1 || !strings.Contains(stderr, "has no disk: convert with --disk qcow2") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("a directory without a disk: exit %d: %s", code, stderr)
	}
	dir := convertBusybox(t, "amd64", "--disk", "qcow2", "--efi-stub", efiStub(t, "amd64"))
	code, _, stderr = run("push", "-q", "--tls-verify=false", "--creds", reg.user+":wrong", dir, "docker://"+reg.host+"/vm/denied:v1")
	if code != 1 || !strings.Contains(stderr, "unauthorized") || strings.Count(stderr, "\n") != 1 {
		t.Errorf("wrong credentials: exit %d: %s", code, stderr)
	}
	if out, err := exec.Command("skopeo", "inspect", "--raw", "--creds", reg.creds(), "--tls-verify=false", "docker://"+reg.host+"/vm/denied:v1").CombinedOutput(); err == nil {
		t.Errorf("a tag after a denied push: %s", out)
	}
	reg.push(t, "oci:"+filepath.Join(fixtures.Dir(t), "busybox-amd64"), "plain/busybox:latest")
	out := filepath.Join(t.TempDir(), "out.vm")
	code, _, stderr = run("pull", "-q", "--tls-verify=false", "--creds", reg.creds(), "docker://"+reg.host+"/plain/busybox:latest", "-o", out)
	if code != 1 || !strings.Contains(stderr, "is not a c2vm VM image; convert it with `c2vm convert`") {
		t.Errorf("pull of a plain image: exit %d: %s", code, stderr)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("%s was written", out)
	}
}

// TestPushAppliance writes the KubeVirt manifests of the web appliance
// (EXPOSE 8080, VOLUME /data), pinned to the pushed digest, and times
// the push against skopeo copy of the same blobs to a fresh registry.
func TestPushAppliance(t *testing.T) {
	fixtures.NeedTools(t, "skopeo")
	dir := filepath.Join(t.TempDir(), "web.vm")
	mustConvert(t, "oci:"+applianceImage(t, "amd64"), "--kernel", testkernel.Deb(t, "amd64"), "--init", initFor(t, "amd64"),
		"--disk", "qcow2", "--efi-stub", efiStub(t, "amd64"), "--memory", "256", "--stop-timeout", "20s", "-o", dir)
	start := time.Now()
	vm, err := vmimage.Build(dir, vmimage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vm.Close()
	built := time.Since(start)
	reg := startRegistry(t)
	yaml := filepath.Join(t.TempDir(), "web.yaml")
	start = time.Now()
	r := pushVM(t, reg, reg.host, dir, "vm/web:v1", "--kubevirt", yaml)
	pushTook := time.Since(start)
	b, err := os.ReadFile(yaml)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Volumes) != 1 || r.Volumes[0].Path != "/data" {
		t.Fatalf("volumes pushed: %+v", r.Volumes)
	}
	for _, want := range []string{"url: docker://" + r.Volumes[0].Pinned, "name: web-data-0", "dataVolume:", "image: " + r.Pinned, "port: 8080", "secureBoot: false", "guest: 256Mi", "terminationGracePeriodSeconds: 25", "kind: Service", "logSerialConsole: true"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("manifests lack %q", want)
		}
	}
	t.Logf("KubeVirt manifests of the web appliance:\n%s", b)

	layout := skopeoToLayout(t, reg, reg.host+"/vm/web:v1")
	fresh := startRegistry(t)
	start = time.Now()
	if out, err := exec.Command("skopeo", "copy", "-q", "--dest-creds", fresh.creds(), "--dest-tls-verify=false", "oci:"+layout+":vm", "docker://"+fresh.host+"/vm/web:v1").CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	t.Logf("push of %d layer bytes: c2vm push %s (of which reading, checking and compressing the directory alone: %s), skopeo copy of the same blobs %s",
		r.Uploaded, pushTook.Round(time.Millisecond), built.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// TestPushVolumePersists boots a pushed VM as KubeVirt runs one with a
// DataVolume: the VOLUME's pushed data-disk image, unpacked by umoci, is
// the claim (the first virtio disk), the containerDisk's disk sits under
// a fresh qcow2 overlay each boot. What the first boot wrote to the
// VOLUME, the second reads: the data outlives the VM instance.
func TestPushVolumePersists(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "skopeo", "umoci", "qemu-img")
	a, _ := arch.VM("amd64")
	if _, err := os.Stat(a.EFI.Firmware); err != nil {
		fixtures.Skip(t, "firmware %s: apt-get install %s", a.EFI.Firmware, a.EFI.FirmwarePackage)
	}
	// As root: the fixture's user may not write the new volume's root.
	dir := convertBusybox(t, "amd64", "--disk", "qcow2", "--efi-stub", efiStub(t, "amd64"), "--volume", "/data", "--user", "0",
		"--cmd", `["/bin/sh","-c","echo boots=$(cat /data/n 2>/dev/null); echo x >> /data/n; exit 3"]`)
	reg := startRegistry(t)
	r := pushVM(t, reg, reg.host, dir, "vm/vol:v1")
	if len(r.Volumes) != 1 {
		t.Fatalf("volumes pushed: %+v", r.Volumes)
	}
	disk := checkContainerDisk(t, skopeoToLayout(t, reg, reg.host+"/vm/vol:v1"))
	bundle := filepath.Join(t.TempDir(), "data")
	umoci(t, "unpack", "--rootless", "--image", skopeoToLayout(t, reg, r.Volumes[0].Pinned)+":vm", bundle)
	claim := filepath.Join(t.TempDir(), "claim.img")
	if out, err := exec.Command("cp", "--sparse=always", filepath.Join(bundle, "rootfs", "disk", "data-0.img"), claim).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	os.Chmod(claim, 0o644)
	for _, want := range []string{"boots=", "boots=x"} {
		overlay := filepath.Join(t.TempDir(), "overlay.qcow2")
		if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", disk, overlay).CombinedOutput(); err != nil {
			t.Fatalf("qemu-img create: %v: %s", err, out)
		}
		args, err := vmconfig.QEMUDiskArgs(vmconfig.DiskVM{VM: vmconfig.VM{Arch: "amd64"}, Disk: overlay, Format: "qcow2"}, "tcg", "")
		if err != nil {
			t.Fatal(err)
		}
		// The claim first: KubeVirt lists the DataVolume's disk before
		// the containerDisk, so it is vda.
		n := len(args) - 2
		args = append(args[:n:n], "-drive", "file="+claim+",if=virtio,format=raw", args[n], args[n+1])
		console, _ := bootUntil(t, "amd64", args, "boots=")
		if !strings.Contains(console, want+"\n") {
			t.Errorf("boot %q: console:\n%s", want, tail(console, 30))
		}
		if got := exitStatus(t, console); got != 3 {
			t.Errorf("exit status %d, want 3", got)
		}
	}
}
