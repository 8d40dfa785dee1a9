package launch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/vmdir"
)

// vmDir makes an output directory whose QEMU is a fake: a shell script
// that plays a console transcript.
func vmDir(t *testing.T, arch, script string) (dir, qemu string) {
	t.Helper()
	dir = t.TempDir()
	files := map[string]string{
		"manifest.json": `{"artifacts":{},"vmArch":"` + arch + `","kernel":{"version":"6.1.0"}}`,
		"kernel":        "", "initramfs.img": "", "rootfs.img": "",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	qemu = filepath.Join(dir, "fake-qemu")
	if err := os.WriteFile(qemu, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, qemu
}

type result struct {
	code           int
	err            error
	stdout, stderr string
}

// run runs a fake QEMU playing script. Some fakes never end by
// themselves (exec sleep 3600): Run must end them, and a Run that waits
// for one fails the test after a minute (a watchdog far beyond any
// deadline these tests set, not a timing window).
func run(t *testing.T, ctx context.Context, script string, o Options) result {
	t.Helper()
	o.Dir, o.QEMU = vmDir(t, "amd64", script)
	if o.Accel == "" {
		o.Accel = "tcg"
	}
	var stdout, stderr bytes.Buffer
	o.Stdout, o.Stderr = &stdout, &stderr
	done := make(chan result, 1)
	go func() {
		code, err := Run(ctx, o)
		done <- result{code, err, stdout.String(), stderr.String()}
	}()
	select {
	case r := <-done:
		return r
	case <-time.After(time.Minute):
		t.Fatal("Run did not end a fake QEMU that never exits")
	}
	return result{}
}

// A console as the Debian kernel and the init write it: CRLF line ends,
// kernel lines, the init's own, the container's, the status line.
const transcript = `printf '[    0.000000] Linux version 6.1.0\r\n'
printf 'c2vm-init: waiting up to 10s for the root disk\r\n'
printf 'hello from the container\r\n'
printf 'no newline at the end'
printf 'C2VM_EXIT_STATUS=7\r\n'
printf '[    1.826677] reboot: Power down\r\n'
`

func TestRunConsole(t *testing.T) {
	for _, tc := range []struct {
		name           string
		debug          bool
		stdout, stderr string
	}{
		{"quiet", false,
			"hello from the container\nno newline at the end",
			"c2vm-init: waiting up to 10s for the root disk\n"},
		{"debug", true,
			"[    0.000000] Linux version 6.1.0\nc2vm-init: waiting up to 10s for the root disk\n" +
				"hello from the container\nno newline at the end[    1.826677] reboot: Power down\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, context.Background(), transcript, Options{Debug: tc.debug})
			if r.code != 7 || r.err != nil {
				t.Errorf("Run = %d, %v; want 7, nil", r.code, r.err)
			}
			if r.stdout != tc.stdout {
				t.Errorf("stdout %q, want %q", r.stdout, tc.stdout)
			}
			if r.stderr != tc.stderr {
				t.Errorf("stderr %q, want %q", r.stderr, tc.stderr)
			}
		})
	}
}

// TestRunArgs checks what reaches QEMU: the arch's machine, the accel,
// memory, CPUs, and the command override as base64 JSON.
func TestRunArgs(t *testing.T) {
	script := `for a; do echo "$a"; done; echo C2VM_EXIT_STATUS=0`
	r := run(t, context.Background(), script, Options{Memory: 1024, CPUs: 2, Cmd: []string{"sh", "-c", "echo 'hi there'"}})
	if r.code != 0 || r.err != nil {
		t.Fatalf("Run = %d, %v", r.code, r.err)
	}
	cmd := base64.StdEncoding.EncodeToString([]byte(`["sh","-c","echo 'hi there'"]`))
	for _, want := range []string{"-M\nq35\n", "-accel\ntcg\n", "-m\n1024\n", "-smp\n2\n", "readonly=on",
		"-append\nconsole=ttyS0 panic=-1 quiet loglevel=1 c2vm.cmd=" + cmd + "\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("QEMU args lack %q:\n%s", want, r.stdout)
		}
	}
}

func TestRunNoStatus(t *testing.T) {
	for _, tc := range []struct {
		name, script, why string
	}{
		{"panic", "echo '[    1.0] Kernel panic - not syncing: Attempted to kill init!'; exit 0", "kernel panic: Kernel panic - not syncing"},
		{"silent exit", "echo 'some line'; exit 0", "the VM stopped without reporting a status"},
		{"qemu error", "echo 'qemu: could not load kernel' >&2; exit 1", "could not load kernel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, context.Background(), tc.script, Options{})
			if r.code != StatusNoReport || !errors.Is(r.err, ErrNoReport) {
				t.Fatalf("Run = %d, %v; want %d, ErrNoReport", r.code, r.err, StatusNoReport)
			}
			if !strings.Contains(r.err.Error(), tc.why) {
				t.Errorf("error %q lacks %q", r.err, tc.why)
			}
			if !strings.Contains(r.stderr, "last console lines") {
				t.Errorf("stderr %q", r.stderr)
			}
		})
	}
}

// TestRunTimeout: a VM that never ends is killed at the deadline with
// status 124, and its process is gone when Run returns. The fake QEMU
// records its pid as its first act; a deadline that comes before that (a
// loaded machine) proves nothing, so the run is repeated with a longer
// one rather than the test relying on a window.
func TestRunTimeout(t *testing.T) {
	for timeout := 500 * time.Millisecond; timeout < 2*time.Minute; timeout *= 2 {
		pidFile := filepath.Join(t.TempDir(), "pid")
		r := run(t, context.Background(), "echo $$ > "+pidFile+"; exec sleep 3600", Options{Timeout: timeout})
		if _, err := os.Stat(pidFile); err != nil {
			t.Logf("the fake QEMU had not started after %s; again with a longer timeout", timeout)
			continue
		}
		if r.code != StatusTimeout || !errors.Is(r.err, ErrTimeout) {
			t.Fatalf("Run = %d, %v; want %d, ErrTimeout", r.code, r.err, StatusTimeout)
		}
		if want := "timed out after " + timeout.String() + "; VM killed"; r.err.Error() != want {
			t.Errorf("error %q, want %q", r.err, want)
		}
		assertGone(t, pidFile)
		return
	}
	t.Fatal("the fake QEMU never started")
}

// TestRunCancel: cancelling the context (SIGINT in the CLI) kills QEMU.
// The context is cancelled once the fake QEMU has said it runs, through a
// FIFO: a cancel before it starts would test nothing.
func TestRunCancel(t *testing.T) {
	dir := t.TempDir()
	pidFile, ready := filepath.Join(dir, "pid"), filepath.Join(dir, "ready")
	if err := syscall.Mkfifo(ready, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		os.ReadFile(ready) // returns when the fake QEMU has written and closed it
		cancel()
	}()
	r := run(t, ctx, "echo $$ > "+pidFile+"; echo > "+ready+"; exec sleep 3600", Options{})
	if r.code != StatusInterrupted || r.err == nil {
		t.Fatalf("Run = %d, %v; want %d", r.code, r.err, StatusInterrupted)
	}
	assertGone(t, pidFile)
}

// TestRunStatusThenHang: a guest that reports and then fails to power
// off is killed after StatusGrace; its status still counts.
func TestRunStatusThenHang(t *testing.T) {
	defer func(g time.Duration) { StatusGrace = g }(StatusGrace)
	StatusGrace = 100 * time.Millisecond
	r := run(t, context.Background(), "echo C2VM_EXIT_STATUS=42; exec sleep 3600", Options{})
	if r.code != 42 || r.err != nil {
		t.Fatalf("Run = %d, %v; want 42, nil", r.code, r.err)
	}
}

func assertGone(t *testing.T, pidFile string) {
	t.Helper()
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("QEMU (pid %d) still runs", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestRunNotVM(t *testing.T) {
	for _, tc := range []struct{ name, manifest string }{
		{"no manifest", ""},
		{"no kernel", `{"artifacts":{},"vmArch":"amd64"}`},
		{"no artifacts", `{"vmArch":"amd64","kernel":{"version":"6.1.0"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.manifest != "" {
				os.WriteFile(filepath.Join(dir, "manifest.json"), []byte(tc.manifest), 0o644)
			}
			_, err := Run(context.Background(), Options{Dir: dir, Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
			if !errors.Is(err, ErrNotVM) {
				t.Errorf("err = %v, want ErrNotVM", err)
			}
		})
	}
}

func TestChooseAccel(t *testing.T) {
	foreign := "arm64"
	if hostArch == "arm64" {
		foreign = "amd64"
	}
	for _, tc := range []struct {
		accel, arch, want string
		wantErr           bool
	}{
		{"kvm", hostArch, "kvm", false},
		{"tcg", hostArch, "tcg", false},
		{"auto", foreign, "tcg", false}, // KVM runs only the host's arch
		{"", foreign, "tcg", false},
		{"hvf", hostArch, "", true},
	} {
		t.Run(tc.accel+"/"+tc.arch, func(t *testing.T) {
			dir, _ := vmDir(t, tc.arch, "")
			vm, _, err := loadVM(&Options{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			got, err := chooseAccel(context.Background(), tc.accel, vm, "")
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("chooseAccel = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestProbeCache: a probe's answer is reused within one host boot and
// ignored after another.
func TestProbeCache(t *testing.T) {
	if bootID() == "" {
		fixtures.Skip(t, "no /proc/sys/kernel/random/boot_id (not Linux?)")
	}
	t.Setenv("C2VM_CACHE", t.TempDir())
	file := probeCache("amd64")
	if _, found := readProbe(file); found {
		t.Fatal("found a probe in an empty cache")
	}
	for _, want := range []bool{true, false} {
		writeProbe(file, want)
		if ok, found := readProbe(file); !found || ok != want {
			t.Errorf("readProbe after writeProbe(%v) = %v, %v", want, ok, found)
		}
	}
	os.WriteFile(file, []byte("another-boot kvm\n"), 0o644)
	if _, found := readProbe(file); found {
		t.Error("used a probe from another host boot")
	}
}

// TestProbeKVMFake: a QEMU that prints the banner means KVM works, one
// that hangs means it does not, within ProbeTimeout. The banner case gets
// a minute (it ends at the banner), so a slow start cannot fail it; a hung
// QEMU must be given up on (a watchdog fails a probe that waits for it).
func TestProbeKVMFake(t *testing.T) {
	defer func(d time.Duration) { ProbeTimeout = d }(ProbeTimeout)
	for _, tc := range []struct {
		script  string
		timeout time.Duration
		want    bool
	}{
		{"echo '[    0.000000] Linux version 6.1.0'; exec sleep 3600", time.Minute, true},
		{"echo 'SeaBIOS'; exec sleep 3600", 300 * time.Millisecond, false},
		{"exit 1", time.Minute, false},
	} {
		t.Setenv("C2VM_CACHE", t.TempDir())
		ProbeTimeout = tc.timeout
		dir, qemu := vmDir(t, "amd64", tc.script)
		vm, _, err := loadVM(&Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan bool, 1)
		go func() { got <- probeKVM(context.Background(), vm, qemu) }()
		select {
		case ok := <-got:
			if ok != tc.want {
				t.Errorf("probeKVM with %q = %v", tc.script, ok)
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("probeKVM with %q did not return", tc.script)
		}
	}
}

func TestParseShare(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		in   string
		want Share
		bad  string
	}{
		{in: dir + ":/data", want: Share{Host: dir, Guest: "/data"}},
		{in: dir + ":/data/:ro", want: Share{Host: dir, Guest: "/data", ReadOnly: true}},
		{in: dir + ":/data:rw", want: Share{Host: dir, Guest: "/data"}},
		{in: dir, bad: "want HOSTDIR:GUESTDIR"},
		{in: dir + ":/data:rx", bad: "want HOSTDIR:GUESTDIR"},
		{in: dir + "/absent:/data", bad: "is not a directory"},
		{in: dir + ":data", bad: "not absolute"},
		{in: dir + `:/da"ta`, bad: "not allowed"},
		{in: dir + ":/proc/x", bad: "/proc"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseShare(tc.in)
			if tc.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tc.bad) {
					t.Errorf("got %v, want an error with %q", err, tc.bad)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestShareFS(t *testing.T) {
	if _, err := shareFS(nil); !errors.Is(err, ErrNoShareFS) || !strings.Contains(err.Error(), "CONFIG_VIRTIO_FS") {
		t.Errorf("no filesystem: %v", err)
	}
	if fs, err := shareFS([]string{"9p"}); fs != "9p" || err != nil {
		t.Errorf("9p only: %s %v", fs, err)
	}
	saved := virtiofsd
	defer func() { virtiofsd = saved }()
	virtiofsd = filepath.Join(t.TempDir(), "absent")
	if _, err := shareFS([]string{"virtiofs"}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("virtiofs without its daemon: %v", err)
	}
	if fs, err := shareFS([]string{"virtiofs", "9p"}); fs != "9p" || err != nil {
		t.Errorf("virtiofs without its daemon, 9p there: %s %v", fs, err)
	}
}

// TestRunVerity: a --verity output boots with its hash tree attached
// read-only after the root disk and its root hash as c2vm.roothash.
func TestRunVerity(t *testing.T) {
	dir, qemu := vmDir(t, "amd64", `for a; do echo "$a"; done; echo C2VM_EXIT_STATUS=0`)
	hash := strings.Repeat("ab", 32)
	m := `{"artifacts":{},"vmArch":"amd64","kernel":{"version":"6.1.0"},"verity":{"file":"rootfs.verity","rootHash":"` + hash + `"}}`
	for name, body := range map[string]string{"manifest.json": m, "rootfs.verity": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code, err := Run(context.Background(), Options{Dir: dir, QEMU: qemu, Accel: "tcg", Stdout: &stdout, Stderr: &stderr})
	if code != 0 || err != nil {
		t.Fatalf("Run = %d, %v; stderr %s", code, err, stderr.String())
	}
	for _, want := range []string{"rootfs.verity,if=virtio,format=raw,readonly=on\n", " c2vm.roothash=" + hash + " "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("QEMU args lack %q:\n%s", want, stdout.String())
		}
	}
}

// TestRunChecksArtifacts: an artifact that is not what manifest.json
// says stops the run before QEMU starts, naming the file.
func TestRunChecksArtifacts(t *testing.T) {
	sum := func(b string) string { s := sha256.Sum256([]byte(b)); return hex.EncodeToString(s[:]) }
	m := `{"vmArch":"amd64","kernel":{"version":"6.1.0"},"artifacts":{
		"kernel":{"sha256":"` + sum("") + `","size":0},
		"rootfs.img":{"sha256":"` + sum("") + `","size":0}}}`
	r := runManifest(t, m, Options{})
	if r.code != 0 || r.err != nil {
		t.Fatalf("intact: Run = %d, %v", r.code, r.err)
	}
	m = strings.Replace(m, sum(""), sum("x"), 2)
	r = runManifest(t, m, Options{})
	if !errors.Is(r.err, vmdir.ErrMismatch) || !strings.Contains(r.err.Error(), "kernel: sha256 mismatch") {
		t.Errorf("altered: Run = %d, %v; want the kernel's sha256 mismatch", r.code, r.err)
	}
}
