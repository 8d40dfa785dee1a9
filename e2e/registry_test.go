package e2e

import (
	"bytes"
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

// registry is a real Docker distribution registry (Debian's
// docker-registry) on a loopback port, with htpasswd (bcrypt) auth.
type registry struct {
	host       string // 127.0.0.1:PORT
	user, pass string
}

// startRegistry writes the registry's YAML config, htpasswd file and
// storage into a temp dir and serves until the test ends.
func startRegistry(t *testing.T) registry {
	t.Helper()
	fixtures.NeedTools(t, "docker-registry", "htpasswd")
	dir := t.TempDir()
	r := registry{user: "c2vm", pass: "s3cret"}
	// htpasswd -B: distribution reads bcrypt entries only
	// (registry/auth/htpasswd/htpasswd.go).
	if out, err := exec.Command("htpasswd", "-Bbc", filepath.Join(dir, "htpasswd"), r.user, r.pass).CombinedOutput(); err != nil {
		t.Fatalf("htpasswd: %v: %s", err, out)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.host = l.Addr().String()
	l.Close()
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: c2vm-test
    path: %s
`, filepath.Join(dir, "storage"), r.host, filepath.Join(dir, "htpasswd"))
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cmd := exec.Command("docker-registry", "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Ready when /v2/ asks for credentials (distribution's API check).
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + r.host + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return r
			}
		}
		if i == 100 {
			t.Fatalf("registry on %s not up: %v\n%s", r.host, err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r registry) creds() string { return r.user + ":" + r.pass }

// push copies an OCI layout's image, every platform of it, with skopeo and
// returns the pushed manifest's digest.
func (r registry) push(t *testing.T, src, repo string) string {
	t.Helper()
	fixtures.NeedTools(t, "skopeo")
	df := filepath.Join(t.TempDir(), "digest")
	cmd := exec.Command("skopeo", "copy", "--all", "--dest-creds", r.creds(), "--dest-tls-verify=false",
		"--digestfile", df, src, "docker://"+r.host+"/"+repo)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("skopeo copy: %v: %s", err, out)
	}
	d, err := os.ReadFile(df)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(d))
}

// noCredentials points every credential file skopeo and Docker read at an
// empty directory. The cache stays the real one (C2VM_CACHE pinned before
// HOME moves): fixtures and test kernels fetched later in the same test
// process must not land in a directory the test deletes.
func noCredentials(t *testing.T) string {
	fixtures.Dir(t)
	dir := cacheDir(t)
	t.Setenv("C2VM_CACHE", dir)
	home := t.TempDir()
	for _, k := range []string{"HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"} {
		t.Setenv(k, home)
	}
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("REGISTRY_AUTH_FILE", "")
	return home
}

// run runs the CLI in-process and returns its exit status, stdout and stderr.
func run(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// jq checks a JSON document with jq -e (exit 0 only when the filter is
// true), so the --json output is read by the tool pipelines use.
func jq(t *testing.T, doc, filter string, args ...string) {
	t.Helper()
	cmd := exec.Command("jq", append(append([]string{"-e"}, args...), filter)...)
	cmd.Stdin = strings.NewReader(doc)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("jq -e %s: %v: %s\non:\n%s", filter, err, out, doc)
	}
}

// TestRegistryPull pushes the multi-platform fixture to a real registry
// with auth and converts it from there: by tag and by digest, with --creds
// and with the auth file `skopeo login` writes, the root filesystem is
// byte for byte the local layout's; without credentials one line says how
// to log in and nothing is written; --json results are read by jq.
func TestRegistryPull(t *testing.T) {
	fixtures.NeedTools(t, "jq")
	reg := startRegistry(t)
	multi := filepath.Join(fixtures.Dir(t), "busybox-multi")
	digest := reg.push(t, "oci:"+multi+":latest", "c2vm/busybox:latest")
	// Built before HOME moves, so go's build cache is the usual one.
	bin := c2vmBinary(t)
	home := noCredentials(t)
	out := t.TempDir()
	tag := "docker://" + reg.host + "/c2vm/busybox:latest"

	for _, arch := range []struct{ name, platform string }{{"amd64", "linux/amd64"}, {"arm64", "linux/arm64"}} {
		local := filepath.Join(out, "local-"+arch.name)
		mustConvert(t, "--no-kernel", "--platform", arch.platform, "oci:"+multi+":latest", "-o", local)
		for _, ref := range []string{tag, "docker://" + reg.host + "/c2vm/busybox@" + digest} {
			t.Run(arch.name+"/"+strings.TrimPrefix(ref, "docker://"+reg.host+"/"), func(t *testing.T) {
				pulled := filepath.Join(out, "pulled")
				os.RemoveAll(pulled)
				code, stdout, stderr := run("convert", "--no-kernel", "--json", "--creds", reg.creds(), "--platform", arch.platform, ref, "-o", pulled)
				if code != 0 {
					t.Fatalf("exit %d: %s", code, stderr)
				}
				if !sameFile(t, filepath.Join(local, "rootfs.img"), filepath.Join(pulled, "rootfs.img")) {
					t.Error("rootfs.img pulled from the registry differs from the local layout's")
				}
				if !sameFile(t, filepath.Join(local, "config.json"), filepath.Join(pulled, "config.json")) {
					t.Error("config.json differs")
				}
				// Progress goes to stderr as plain lines: no carriage
				// return off a terminal.
				if strings.Contains(stderr, "\r") || !strings.Contains(stderr, "c2vm: image: "+arch.platform) {
					t.Errorf("stderr %q: want plain progress lines", stderr)
				}
				jq(t, stdout, `.image.ref == $ref and .image.platform.architecture == $arch and (.image.manifestDigest | startswith("sha256:"))
					and .artifacts["rootfs.img"].path == $dir + "/rootfs.img" and (.artifacts["rootfs.img"].sha256 | length) == 64
					and .artifacts["rootfs.img"].size > 0 and .artifacts["manifest.json"].size > 0 and .c2vmVersion == $v and .dir == $dir`,
					"--arg", "ref", ref, "--arg", "arch", arch.name, "--arg", "dir", pulled, "--arg", "v", cli.Version)
			})
		}
	}

	t.Run("no credentials", func(t *testing.T) {
		dir := filepath.Join(out, "denied")
		code, stdout, stderr := run("convert", "--json", "--no-kernel", "--platform", "linux/amd64", tag, "-o", dir)
		if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "unauthorized") || !strings.Contains(stderr, "skopeo login "+reg.host) {
			t.Errorf("exit %d, stderr %q: want 1 and one line saying how to log in", code, stderr)
		}
		jq(t, stdout, `(.error | test("unauthorized.*--creds")) and .exitCode == 1`)
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s written: %v", dir, err)
		}
		if left, _ := filepath.Glob(filepath.Join(out, ".denied*")); len(left) != 0 {
			t.Errorf("left behind: %v", left)
		}
	})

	t.Run("skopeo login auth file, -q", func(t *testing.T) {
		auth := filepath.Join(home, "auth.json")
		login := exec.Command("skopeo", "login", "--tls-verify=false", "--authfile", auth, "-u", reg.user, "--password-stdin", reg.host)
		login.Stdin = strings.NewReader(reg.pass)
		if b, err := login.CombinedOutput(); err != nil {
			t.Fatalf("skopeo login: %v: %s", err, b)
		}
		t.Setenv("REGISTRY_AUTH_FILE", auth)
		dir := filepath.Join(out, "authfile")
		code, stdout, stderr := run("convert", "-q", "--no-kernel", "--platform", "linux/arm64", tag, "-o", dir)
		if code != 0 || stdout != "" || stderr != "" {
			t.Fatalf("exit %d, stdout %q, stderr %q: want 0 and silence", code, stdout, stderr)
		}
		if !sameFile(t, filepath.Join(out, "local-arm64", "rootfs.img"), filepath.Join(dir, "rootfs.img")) {
			t.Error("rootfs.img differs")
		}
		code, stdout, stderr = run("inspect", "--json", tag, "--platform", "linux/arm64")
		if code != 0 {
			t.Fatalf("inspect: exit %d: %s", code, stderr)
		}
		jq(t, stdout, `(.platforms | map(.architecture) | sort) == ["amd64", "arm64"] and .platform.architecture == "arm64" and .config.User == "app" and (.layers | length) == 3`)
	})

	t.Run("progress on a terminal and off one", func(t *testing.T) {
		fixtures.NeedTools(t, "script")
		deb := testkernel.Deb(t, "amd64")
		convert := func(dir string, quiet bool) []string {
			args := []string{bin, "convert", "--kernel", deb, "--creds", reg.creds(), "--platform", "linux/amd64", tag, "-o", filepath.Join(out, dir)}
			if quiet {
				args = append(args, "-q")
			}
			return args
		}
		// script(1) gives c2vm a pseudo-terminal: the bars are drawn
		// there (carriage returns), for the download, each layer, the
		// rootfs write and the kernel .deb's unpacking.
		for _, tc := range []struct {
			dir   string
			quiet bool
			want  []string
		}{
			{"tty", false, []string{"\r", "c2vm: pull ", "c2vm: layer 1/3", "c2vm: layer 3/3", "c2vm: rootfs squashfs", "c2vm: unpack linux-image-", "c2vm: done: "}},
			{"tty-quiet", true, nil},
		} {
			tty, err := exec.Command("script", "-qec", strings.Join(convert(tc.dir, tc.quiet), " "), "/dev/null").CombinedOutput()
			if err != nil {
				t.Fatalf("script: %v: %q", err, tty)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(tty), w) {
					t.Errorf("%s: no %q on the terminal: %q", tc.dir, w, tty)
				}
			}
			if tc.want == nil && len(tty) != 0 {
				t.Errorf("-q on a terminal printed %q", tty)
			}
		}
		// Off a terminal (a pipe), the same run prints plain lines only.
		cmd := exec.Command(convert("pipe", false)[0], convert("pipe", false)[1:]...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %s", err, stderr.String())
		}
		if strings.ContainsAny(stderr.String(), "\r\x1b") || strings.Contains(stderr.String(), "layer 1/3") || strings.Contains(stderr.String(), "unpack ") || !strings.Contains(stderr.String(), "c2vm: done: ") {
			t.Errorf("off a terminal: %q; want plain progress lines", stderr.String())
		}
	})

	t.Run("no such tag, no such platform", func(t *testing.T) {
		for _, tc := range []struct{ ref, platform, want string }{
			{"docker://" + reg.host + "/c2vm/busybox:nope", "linux/amd64", "no such image"},
			{tag, "linux/s390x", "offers linux/amd64, linux/arm64/v8"},
		} {
			code, stdout, stderr := run("inspect", "--json", "--creds", reg.creds(), "--platform", tc.platform, tc.ref)
			if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s %s: exit %d, stderr %q; want one line with %q", tc.ref, tc.platform, code, stderr, tc.want)
			}
			jq(t, stdout, `.error | test($want)`, "--arg", "want", tc.want)
		}
	})
}
