package e2e

import (
	"archive/tar"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/cli"
	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
)

// applianceScript is the appliance's entrypoint: it counts its boots and
// logs them in the /data volume, shows what the previous boot left there,
// fetches a page from the host through user-mode networking's gateway,
// serves /srv/www with busybox httpd on the EXPOSEd 8080, and on TERM
// (the power button, through the init) logs and exits 0.
const applianceScript = `#!/bin/sh
n=$(( $(cat /data/boots 2>/dev/null || echo 0) + 1 ))
echo "$n" > /data/boots
echo "previous: $(cat /data/log 2>/dev/null | tr '\n' ' ')"
echo "seed: $(cat /data/seed.txt)"
trap 'echo "stopped boot $n as $(id -u)" >> /data/log; echo "TERM handled"; exit 0' TERM
if [ -n "$HOST_URL" ]; then echo "from host: $(busybox wget -q -O - "$HOST_URL")"; fi
busybox httpd -p 8080 -h /srv/www
echo listening
while :; do sleep 1; done
`

// applianceImage builds, with umoci, the busybox fixture plus a layer
// holding the page, the entrypoint and /data/seed.txt owned by app
// (1000), with EXPOSE 8080 and VOLUME /data.
func applianceImage(t *testing.T, arch string) string {
	t.Helper()
	fixtures.NeedTools(t, "umoci", "cp")
	img := filepath.Join(t.TempDir(), "appliance")
	if out, err := exec.Command("cp", "-a", filepath.Join(fixtures.Dir(t), "busybox-"+arch), img).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	layer := tarOf(func(tw *tar.Writer) {
		mtime := time.Unix(1700000000, 0)
		for _, e := range []struct {
			name, body string
			mode       int64
			uid        int
			dir        bool
		}{
			{name: "srv/", mode: 0o755, dir: true},
			{name: "srv/www/", mode: 0o755, dir: true},
			{name: "srv/www/index.html", mode: 0o644, body: "hello from the c2vm appliance\n"},
			{name: "app/", mode: 0o755, dir: true},
			{name: "app/start", mode: 0o755, body: applianceScript},
			{name: "data/", mode: 0o750, uid: 1000, dir: true},
			{name: "data/seed.txt", mode: 0o640, uid: 1000, body: "seeded by the image\n"},
		} {
			h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: mtime, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
			if e.dir {
				h.Typeflag = tar.TypeDir
			}
			tw.WriteHeader(h)
			tw.Write([]byte(e.body))
		}
	})
	p := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(p, layer, 0o644); err != nil {
		t.Fatal(err)
	}
	ref := img + ":latest"
	umoci(t, "raw", "add-layer", "--image", ref, p)
	umoci(t, "config", "--image", ref, "--config.entrypoint", "/app/start", "--clear=config.cmd",
		"--config.exposedports", "8080/tcp", "--config.volume", "/data", "--created", "2023-11-14T22:13:20Z")
	return img
}

// freePort is a TCP port nothing listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestApplianceServes is issue 9's proof on both arches: the EXPOSEd port
// published with -p serves the page to curl on the host, the guest
// reaches a host service at 10.0.2.2, and SIGTERM to c2vm run runs the
// container's TERM handler (exit 0, no QEMU left).
func TestApplianceServes(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "curl", "qemu-system-x86_64", "qemu-system-aarch64")
	host := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "the host answers")
	})}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go host.Serve(hl)
	t.Cleanup(func() { host.Close() })
	hostURL := fmt.Sprintf("http://10.0.2.2:%d/", hl.Addr().(*net.TCPAddr).Port)

	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "appliance.vm")
			mustConvert(t, "oci:"+applianceImage(t, arch), "--kernel", testkernel.Deb(t, arch), "--init", initFor(t, arch),
				"--env", "HOST_URL="+hostURL, "-o", dir)
			port := freePort(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			out := &watchWriter{marker: "listening\n", seen: func() {}}
			var stderr strings.Builder
			start := time.Now()
			done := make(chan int)
			go func() {
				done <- cli.Main(ctx, []string{"run", "--accel", "tcg", "-p", fmt.Sprintf("%d:8080", port), dir}, out, &stderr)
			}()
			page, took := curlUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 4*time.Minute, done)
			t.Logf("%s: QEMU start to the first page served: %s", arch, took.Round(100*time.Millisecond))
			if page != "hello from the c2vm appliance\n" {
				t.Errorf("page %q", page)
			}
			cancel() // what c2vm run's SIGTERM does
			code := <-done
			t.Logf("c2vm run: %s in all", time.Since(start).Round(time.Second))
			got := out.String()
			for _, want := range []string{"from host: the host answers", "seed: seeded by the image", "TERM handled"} {
				if !strings.Contains(got, want) {
					t.Errorf("output lacks %q:\n%s\nstderr: %s", want, got, stderr.String())
				}
			}
			if code != 0 {
				t.Errorf("exit %d, want 0 (the TERM handler's)", code)
			}
			if out, err := exec.Command("pgrep", "-f", dir).Output(); err == nil {
				t.Errorf("QEMU still runs: %s", out)
			}
		})
	}
}

// curlUntil fetches url with curl until it answers, the VM ends or the
// bound passes; it returns the page and how long it took.
func curlUntil(t *testing.T, url string, bound time.Duration, ended <-chan int) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for time.Since(start) < bound {
		select {
		case code := <-ended:
			t.Fatalf("the VM ended (exit %d) before serving %s", code, url)
		default:
		}
		out, err := exec.Command("curl", "-fsS", "--max-time", "2", url).Output()
		if err == nil {
			return string(out), time.Since(start)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s did not answer within %s", url, bound)
	return "", 0
}

// TestApplianceQemuScript: qemu.sh alone, with no c2vm, serves the port
// baked in with --publish.
func TestApplianceQemuScript(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "curl", "qemu-system-x86_64")
	port := freePort(t)
	dir := filepath.Join(t.TempDir(), "appliance.vm")
	mustConvert(t, "oci:"+applianceImage(t, "amd64"), "--kernel", testkernel.Deb(t, "amd64"), "--init", initFor(t, "amd64"),
		"--publish", fmt.Sprintf("%d:8080", port), "-o", dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "qemu.sh"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(cmd.Environ(), "C2VM_ACCEL=tcg")
	var console strings.Builder
	cmd.Stdout, cmd.Stderr = &console, &console
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ended := make(chan int, 1)
	go func() { cmd.Wait(); ended <- cmd.ProcessState.ExitCode() }()
	page, took := curlUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 4*time.Minute, ended)
	t.Logf("qemu.sh: first page after %s", took.Round(100*time.Millisecond))
	if page != "hello from the c2vm appliance\n" {
		t.Errorf("page %q", page)
	}
	cancel()
	<-ended
}

// TestApplianceLibvirt: the generated libvirt.xml in a real libvirtd
// serves its forwarded port, and `virsh shutdown` (ACPI) stops the
// container gracefully: its TERM handler runs and it reports status 0.
func TestApplianceLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "curl")
	needLibvirt(t)
	port := freePort(t)
	dir := filepath.Join(t.TempDir(), "appliance.vm")
	mustConvert(t, "oci:"+applianceImage(t, "amd64"), "--kernel", testkernel.Deb(t, "amd64"), "--init", initFor(t, "amd64"),
		"--publish", fmt.Sprintf("%d:8080", port), "-o", dir)
	d := defineDomain(t, dir)
	d.virsh("start", d.name)
	page, took := curlUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 4*time.Minute, nil)
	t.Logf("libvirt: first page after %s", took.Round(100*time.Millisecond))
	if page != "hello from the c2vm appliance\n" {
		t.Errorf("page %q", page)
	}
	d.virsh("shutdown", d.name)
	console := d.waitOff(2 * time.Minute)
	if !strings.Contains(console, "TERM handled") {
		t.Errorf("the TERM handler did not run:\n%s", tail(console, 30))
	}
	if got := exitStatus(t, console); got != 0 {
		t.Errorf("exit status %d, want 0", got)
	}
	if out, err := exec.Command("e2fsck", "-fn", filepath.Join(dir, "data-0.img")).CombinedOutput(); err != nil {
		t.Errorf("e2fsck -fn on the data disk after virsh shutdown: %v\n%s", err, out)
	}
}

// TestApplianceVolume: VOLUME /data is a persistent data disk seeded from
// the image (the seed file, owned by the image's user); what one boot's
// TERM handler writes there the next boot sees, and the disk is clean for
// e2fsck after each graceful stop.
func TestApplianceVolume(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64", "e2fsck", "debugfs")
	dir := filepath.Join(t.TempDir(), "appliance.vm")
	mustConvert(t, "oci:"+applianceImage(t, "amd64"), "--kernel", testkernel.Deb(t, "amd64"), "--init", initFor(t, "amd64"),
		"--no-publish", "--data-size", "64M", "-o", dir)
	disk := filepath.Join(dir, "data-0.img")
	if out, err := exec.Command("debugfs", "-R", "stat /seed.txt", disk).CombinedOutput(); err != nil || !strings.Contains(string(out), "User:  1000") {
		t.Errorf("seed.txt on the data disk is not app's: %v\n%s", err, out)
	}
	for boot, want := range []string{"previous: \n", "previous: stopped boot 1 as 1000 \n"} {
		out, stderr, code := runUntil(t, "listening\n", "run", "--accel", "tcg", "--timeout", "5m", dir)
		if code != 0 || !strings.Contains(out, want) || !strings.Contains(out, "seed: seeded by the image") {
			t.Errorf("boot %d: exit %d, output lacks %q:\n%s\nstderr: %s", boot+1, code, want, out, stderr)
		}
		if out, err := exec.Command("e2fsck", "-fn", disk).CombinedOutput(); err != nil {
			t.Errorf("boot %d: e2fsck -fn on the data disk after a graceful stop: %v\n%s", boot+1, err, out)
		}
	}
}

// TestHostShare: c2vm run -v shares a host directory both ways (virtiofs
// with Debian's cloud kernel, virtiofsd running as root here), and a
// read-only share refuses writes.
func TestHostShare(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64")
	host, ro := t.TempDir(), t.TempDir()
	os.Chmod(host, 0o777) // the container runs as app (1000)
	os.WriteFile(filepath.Join(host, "from-host.txt"), []byte("written by the host\n"), 0o644)
	os.WriteFile(filepath.Join(ro, "ro.txt"), []byte("read-only share\n"), 0o644)
	dir := convertBusybox(t, "amd64", "--cmd", shellCmd(`cat /mnt/host/from-host.txt /mnt/ro/ro.txt
echo "written by the guest as $(id -u)" > /mnt/host/from-guest.txt
touch /mnt/ro/x 2>/dev/null || echo "ro refused"`))
	out, stderr, code := runVM(t, "-v", host+":/mnt/host", "-v", ro+":/mnt/ro:ro", dir)
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	for _, want := range []string{"written by the host\n", "read-only share\n", "ro refused\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if b, err := os.ReadFile(filepath.Join(host, "from-guest.txt")); err != nil || string(b) != "written by the guest as 1000\n" {
		t.Errorf("the host reads %q, %v", b, err)
	}
}
