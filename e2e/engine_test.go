package e2e

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/vmdir"
)

// engine is a real container engine serving the Docker Engine API on
// its own socket, with its own storage, for one test.
type engine struct {
	name string // "Docker Engine", "Podman Engine"
	host string // unix://DIR/NAME.sock, for DOCKER_HOST
	// load loads a `docker save` archive into the engine's store.
	load func(t *testing.T, archive string)
}

// startDockerd runs Debian's dockerd (docker.io) on a private socket and
// data root, without the iptables rules and bridge a shared host or a
// container cannot have, on vfs (no overlay mounts needed).
func startDockerd(t *testing.T) engine {
	t.Helper()
	fixtures.NeedTools(t, "dockerd", "docker")
	needRoot(t, "dockerd")
	dir := t.TempDir()
	sock := filepath.Join(dir, "docker.sock")
	// Not the host's /etc/docker/daemon.json.
	daemonJSON := filepath.Join(dir, "daemon.json")
	writeFile(t, daemonJSON, []byte("{}"))
	serve(t, sock, "dockerd", "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=vfs",
		"-H", "unix://"+sock, "--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--config-file", daemonJSON)
	e := engine{name: "Docker Engine", host: "unix://" + sock}
	e.load = func(t *testing.T, archive string) {
		t.Helper()
		if out, err := exec.Command("docker", "-H", e.host, "load", "-i", archive).CombinedOutput(); err != nil {
			t.Fatalf("docker load %s: %v\n%s", archive, err, out)
		}
	}
	return e
}

// startPodman runs `podman system service` on a private socket over its
// own vfs store; images are loaded into that store with podman load.
func startPodman(t *testing.T) engine {
	t.Helper()
	fixtures.NeedTools(t, "podman")
	needRoot(t, "podman with its own --root")
	dir := t.TempDir()
	sock := filepath.Join(dir, "podman.sock")
	store := []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"),
		"--tmpdir", filepath.Join(dir, "tmp"), "--storage-driver", "vfs", "--events-backend", "file"}
	serve(t, sock, "podman", append(store, "system", "service", "--time", "0", "unix://"+sock)...)
	e := engine{name: "Podman Engine", host: "unix://" + sock}
	e.load = func(t *testing.T, archive string) {
		t.Helper()
		if out, err := exec.Command("podman", append(store, "load", "-i", archive)...).CombinedOutput(); err != nil {
			t.Fatalf("podman load %s: %v\n%s", archive, err, out)
		}
	}
	return e
}

func needRoot(t *testing.T, what string) {
	t.Helper()
	if os.Geteuid() != 0 {
		fixtures.Skip(t, "%s needs root", what)
	}
}

// serve starts an engine and waits until it answers GET /_ping on sock;
// it is stopped (SIGTERM, then killed) when the test ends.
func serve(t *testing.T, sock, bin string, args ...string) {
	t.Helper()
	log, err := os.Create(sock + ".log")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
	})
	c := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		resp, err := c.Get("http://engine/_ping")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Logf("%s answers after %s", bin, time.Since(start).Round(time.Millisecond))
				return
			}
		}
		if time.Since(start) > 2*time.Minute {
			b, _ := os.ReadFile(sock + ".log")
			t.Fatalf("%s not answering on %s: %v\n%s", bin, sock, err, tail(string(b), 30))
		}
	}
}

// TestDockerDaemon is issue 25's proof of docker-daemon:: a real dockerd
// and a real `podman system service`, each with the busybox fixtures
// loaded by `docker load` / `podman load`, give c2vm the images through
// the Engine API: the root filesystem and manifest digest equal the
// local docker-archive's conversion, `c2vm inspect` reads it, the
// Docker one boots, and an image the engine lacks is one line naming
// the engine and the image.
func TestDockerDaemon(t *testing.T) {
	fix := fixtures.Dir(t)
	for _, start := range []func(*testing.T) engine{startDockerd, startPodman} {
		e := start(t)
		t.Run(strings.Fields(e.name)[0], func(t *testing.T) {
			t.Setenv("DOCKER_HOST", e.host)
			for _, arch := range []string{"amd64", "arm64"} {
				archive := filepath.Join(fix, "busybox-"+arch+".docker.tar")
				e.load(t, archive)
				local := filepath.Join(t.TempDir(), "local.vm")
				mustConvert(t, "docker-archive:"+archive, "--no-kernel", "-o", local)
				daemon := filepath.Join(t.TempDir(), "daemon.vm")
				mustConvert(t, "docker-daemon:c2vm/busybox:"+arch, "--no-kernel", "-o", daemon)
				if !sameFile(t, filepath.Join(local, "rootfs.img"), filepath.Join(daemon, "rootfs.img")) {
					t.Errorf("%s: rootfs.img differs from the docker-archive's", arch)
				}
				lm, dm := readManifestOnly(t, local), readManifestOnly(t, daemon)
				if lm.Image.ManifestDigest != dm.Image.ManifestDigest || dm.Image.Ref != "docker-daemon:c2vm/busybox:"+arch {
					t.Errorf("%s: manifest image %+v, the docker-archive's %+v", arch, dm.Image, lm.Image)
				}
				if ents, _ := os.ReadDir(filepath.Dir(daemon)); len(ents) != 1 {
					t.Errorf("the saved image's spool is left beside the output: %v", ents)
				}
			}
			var stdout strings.Builder
			if code := cliMain([]string{"inspect", "docker-daemon:c2vm/busybox:amd64"}, &stdout, &stdout); code != 0 || !strings.Contains(stdout.String(), "platform:  linux/amd64") {
				t.Errorf("inspect: exit %d\n%s", code, stdout.String())
			}
			code, stderr := c2vm(t, "convert", "-q", "docker-daemon:c2vm/nosuch:latest", "-o", filepath.Join(t.TempDir(), "x.vm"))
			want := "c2vm: image docker-daemon:c2vm/nosuch:latest: no such image in " + e.name + " "
			if code != 1 || !strings.HasPrefix(stderr, want) || !strings.Contains(stderr, " at "+e.host) || strings.Count(stderr, "\n") != 1 {
				t.Errorf("missing image: exit %d, stderr %q; want one line %q... at %s", code, stderr, want, e.host)
			}
			t.Logf("missing image: %s", strings.TrimSpace(stderr))
		})
	}
}

// TestDockerDaemonBoots: an image read from dockerd boots and runs.
func TestDockerDaemonBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	e := startDockerd(t)
	t.Setenv("DOCKER_HOST", e.host)
	e.load(t, filepath.Join(fixtures.Dir(t), "busybox-amd64.docker.tar"))
	dir := convertRef(t, "docker-daemon:c2vm/busybox:amd64", "amd64", "--cmd", `["/bin/sh","-c","echo from the engine; exit 6"]`)
	stdout, stderr, code := runVM(t, dir)
	if code != 6 || !strings.Contains(stdout, "from the engine\n") {
		t.Errorf("c2vm run: exit %d stdout %q; stderr:\n%s", code, stdout, stderr)
	}
}

func readManifestOnly(t *testing.T, dir string) *vmdir.Manifest {
	t.Helper()
	m, err := vmdir.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
