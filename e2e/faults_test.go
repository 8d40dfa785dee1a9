package e2e

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// Local faults against the real binary: a full disk, a read-only one, two
// conversions racing on one -o, SIGKILL and then a rerun, SIGINT/SIGTERM
// while downloading and while writing. Each checks the exit status, the
// one line, and what is left beside the output.

// tmpfs mounts a tmpfs of size (mount's -o size=) with extra options and
// returns its directory.
func tmpfs(t *testing.T, size, extra string) string {
	t.Helper()
	needRoot(t, "mounting a tmpfs")
	dir := t.TempDir()
	opts := "size=" + size
	if extra != "" {
		opts += "," + extra
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// fixtureRef is the amd64 busybox fixture as an oci: reference.
func fixtureRef(t *testing.T) string {
	return "oci:" + filepath.Join(fixtures.Dir(t), "busybox-amd64")
}

// convertCmd is the real binary converting ref into out, without a kernel.
func convertCmd(t *testing.T, ref, out string) *exec.Cmd {
	cmd := exec.Command(c2vmBinary(t), "convert", "-q", "--no-kernel", ref, "-o", out)
	cmd.Stderr = &bytes.Buffer{}
	return cmd
}

// failsWith runs cmd and wants a non-zero status and one c2vm: line
// holding every one of want.
func failsWith(t *testing.T, cmd *exec.Cmd, want ...string) {
	t.Helper()
	start := time.Now()
	err := cmd.Run()
	stderr := cmd.Stderr.(*bytes.Buffer).String()
	t.Logf("exit after %v, peak RSS %d MiB: %s", time.Since(start).Round(time.Millisecond), peakRSS(cmd)>>10, strings.TrimSpace(stderr))
	if err == nil {
		t.Fatal("exit 0, want a failure")
	}
	checkOneLine(t, cmd.ProcessState.ExitCode(), stderr, want[0], false)
	for _, w := range want[1:] {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q: want %q in it", stderr, w)
		}
	}
}

// peakRSS is an ended process's peak resident set in KiB (getrusage).
func peakRSS(cmd *exec.Cmd) int64 {
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

// TestFaultDiskFull: an output on a full filesystem fails with one line
// naming the output and "no space left", and leaves nothing.
// The sizes fill it while spooling a layer, while writing the root
// filesystem, and while writing the rest.
func TestFaultDiskFull(t *testing.T) {
	for _, size := range []string{"256k", "1200k", "1800k", "2400k"} {
		t.Run(size, func(t *testing.T) {
			mnt := tmpfs(t, size, "")
			out := filepath.Join(mnt, "vm")
			failsWith(t, convertCmd(t, fixtureRef(t), out), "no space left on device", "output "+out)
			checkNothingLeft(t, mnt, false)
		})
	}
}

// TestFaultReadOnly: an output on a read-only filesystem fails with one
// line naming the output.
func TestFaultReadOnly(t *testing.T) {
	mnt := tmpfs(t, "1m", "ro")
	out := filepath.Join(mnt, "vm")
	failsWith(t, convertCmd(t, fixtureRef(t), out), "read-only file system", "output "+out)
	checkNothingLeft(t, mnt, false)
}

// TestFaultRace: two real processes converting into one -o at once: each
// either succeeds or fails saying another c2vm is writing it, and what is
// left is one whole output that c2vm verify accepts.
func TestFaultRace(t *testing.T) {
	parent := t.TempDir()
	out := filepath.Join(parent, "vm")
	busy := 0
	for round := 0; round < 5; round++ {
		a, b := convertCmd(t, fixtureRef(t), out), convertCmd(t, fixtureRef(t), out)
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*exec.Cmd{a, b} {
			if err := c.Wait(); err != nil {
				stderr := c.Stderr.(*bytes.Buffer).String()
				checkOneLine(t, c.ProcessState.ExitCode(), stderr, "another c2vm is writing it", false)
				busy++
			}
		}
		checkNothingLeft(t, parent, true)
		if err := exec.Command(c2vmBinary(t), "verify", out).Run(); err != nil {
			t.Fatalf("round %d: c2vm verify: %v", round, err)
		}
	}
	t.Logf("%d of 10 conversions found the output locked", busy)
}

// running is a started process; done closes when it has ended.
type running struct {
	*exec.Cmd
	done chan struct{}
}

func start(t *testing.T, cmd *exec.Cmd) running {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := running{cmd, make(chan struct{})}
	go func() { cmd.Wait(); close(r.done) }()
	return r
}

// startWriting starts a conversion into parent/vm and returns it once
// its temp dir exists (it is writing), or false when it ended first.
func startWriting(t *testing.T, parent string) (running, bool) {
	t.Helper()
	r := start(t, convertCmd(t, fixtureRef(t), filepath.Join(parent, "vm")))
	for {
		if m, _ := filepath.Glob(filepath.Join(parent, ".vm.tmp-*")); len(m) > 0 {
			return r, true
		}
		select {
		case <-r.done:
			os.RemoveAll(filepath.Join(parent, "vm"))
			return r, false
		case <-time.After(time.Millisecond):
		}
	}
}

// writing retries startWriting until a conversion is caught writing.
func writing(t *testing.T, parent string) running {
	t.Helper()
	for try := 0; try < 20; try++ {
		if r, ok := startWriting(t, parent); ok {
			return r
		}
	}
	t.Fatal("no conversion was caught writing in 20 tries")
	return running{}
}

// signal sends sig and waits up to limit for the process to end; it
// returns the exit status.
func (r running) signal(t *testing.T, sig syscall.Signal, limit time.Duration) int {
	t.Helper()
	start := time.Now()
	r.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(limit):
		r.Process.Kill()
		t.Fatalf("still running %v after %v", limit, sig)
	}
	stderr := r.Stderr.(*bytes.Buffer).String()
	t.Logf("ended %v after %v, peak RSS %d MiB: %s", time.Since(start).Round(time.Millisecond), sig, peakRSS(r.Cmd)>>10, strings.TrimSpace(stderr))
	code := r.ProcessState.ExitCode()
	if sig != syscall.SIGKILL && code != 0 {
		checkOneLine(t, code, stderr, sig.String()+" signal received", false)
	}
	return code
}

// TestFaultKilled: a conversion SIGKILLed while writing leaves only its
// temp files (the temp dir, the lock file), which the next conversion
// into the same place removes.
func TestFaultKilled(t *testing.T) {
	parent := t.TempDir()
	writing(t, parent).signal(t, syscall.SIGKILL, 10*time.Second)
	if checkOnlyTemp(t, parent) == 0 {
		t.Error("the killed run left no temp dir: it was not killed while writing")
	}
	if err := convertCmd(t, fixtureRef(t), filepath.Join(parent, "vm")).Run(); err != nil {
		t.Fatalf("the next run: %v", err)
	}
	checkNothingLeft(t, parent, true)
}

// checkOnlyTemp: a killed run left nothing in parent but its temp dir
// and lock file; it returns how many entries there are.
func checkOnlyTemp(t *testing.T, parent string) int {
	t.Helper()
	left, _ := os.ReadDir(parent)
	for _, e := range left {
		if !strings.HasPrefix(e.Name(), ".vm.tmp-") && e.Name() != ".vm.lock" {
			t.Errorf("a killed run left %s, not a temp file", e.Name())
		}
	}
	return len(left)
}

// TestFaultSignalWriting: SIGINT or SIGTERM while writing ends the
// conversion within seconds, with no output and no temp file.
func TestFaultSignalWriting(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			parent := t.TempDir()
			for try := 0; writing(t, parent).signal(t, sig, 5*time.Second) == 0; try++ {
				if os.RemoveAll(filepath.Join(parent, "vm")); try == 10 {
					t.Fatal("every conversion finished before the signal arrived")
				}
			}
			checkNothingLeft(t, parent, false)
		})
	}
}

// TestFaultSignalDownloading: SIGINT or SIGTERM while a registry holds a
// layer (its config already spooled) ends the conversion within seconds,
// with no output; even after SIGKILL no spooled blob is left in TMPDIR.
func TestFaultSignalDownloading(t *testing.T) {
	reg := startRegistry(t)
	reg.push(t, fixtureRef(t), "c2vm/busybox:latest")
	var blobs atomic.Int32
	p := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: reg.host})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The config passes (it is spooled in TMPDIR), the layer is held.
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet && blobs.Add(1) > 1 {
			<-r.Context().Done()
			return
		}
		p.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ref := "docker://" + strings.TrimPrefix(srv.URL, "http://") + "/c2vm/busybox:latest"
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			parent, tmp := t.TempDir(), t.TempDir()
			blobs.Store(0)
			cmd := convertCmd(t, ref, filepath.Join(parent, "vm"))
			cmd.Args = append(cmd.Args, "--creds", reg.creds())
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			r := start(t, cmd)
			for begin := time.Now(); blobs.Load() < 2; time.Sleep(5 * time.Millisecond) {
				if time.Since(begin) > 30*time.Second {
					cmd.Process.Kill()
					t.Fatalf("no layer asked for: %s", cmd.Stderr)
				}
			}
			if r.signal(t, sig, 5*time.Second) == 0 {
				t.Fatal("exit 0 after the signal")
			}
			checkNothingLeft(t, tmp, false)
			if sig == syscall.SIGKILL {
				checkOnlyTemp(t, parent)
				return
			}
			checkNothingLeft(t, parent, false)
		})
	}
}
