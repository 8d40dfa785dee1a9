package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/launch/agent"
	"github.com/c2vm/c2vm/launch/state"
)

// detachedScript serves a page naming the machine on 8080, and on TERM
// (c2vm stop's power button, through the init) says so and exits 7.
const detachedScript = `trap 'echo "got TERM as $(id -u)"; exit 7' TERM
mkdir -p /tmp/www && echo "served by $(uname -m)" > /tmp/www/index.html
busybox httpd -p 8080 -h /tmp/www
echo ready
while :; do sleep 1; done`

// background runs the c2vm binary (run -d re-executes it as the VM's
// supervisor) with its own state directory.
type background struct {
	t     *testing.T
	state string
}

func newBackground(t *testing.T) background {
	t.Helper()
	c2vmBinary(t) // built before any command is timed
	// Short: agent.sock's path must fit a unix socket address.
	d, err := os.MkdirTemp("", "c2vm-st-")
	if err != nil {
		t.Fatal(err)
	}
	b := background{t: t, state: d}
	t.Cleanup(func() {
		// Whatever failed, no VM outlives the test.
		if names := strings.Fields(b.names()); names != nil {
			b.c2vm(append([]string{"rm", "-f"}, names...)...)
		}
		os.RemoveAll(d)
	})
	return b
}

// c2vm runs one command; stdout, stderr and the exit status.
func (b background) c2vm(args ...string) (string, string, int) {
	b.t.Helper()
	cmd := exec.Command(c2vmBinary(b.t), args...)
	cmd.Env = append(os.Environ(), state.EnvDir+"="+b.state)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		b.t.Fatalf("c2vm %q: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// must runs a command that must succeed and returns its stdout.
func (b background) must(args ...string) string {
	b.t.Helper()
	out, stderr, code := b.c2vm(args...)
	if code != 0 {
		b.t.Fatalf("c2vm %q: exit %d: %s", args, code, stderr)
	}
	return out
}

// names are the VMs of ps -a.
func (b background) names() string {
	var recs []state.Record
	out, _, _ := b.c2vm("ps", "-a", "--json")
	json.Unmarshal([]byte(out), &recs)
	var names []string
	for _, r := range recs {
		names = append(names, r.Name)
	}
	return strings.Join(names, " ")
}

// record is name's ps --json record, nil when ps -a does not list it.
func (b background) record(name string) *state.Record {
	var recs []state.Record
	if err := json.Unmarshal([]byte(b.must("ps", "-a", "--json")), &recs); err != nil {
		b.t.Fatal(err)
	}
	for _, r := range recs {
		if r.Name == name {
			return &r
		}
	}
	return nil
}

// psLine is name's line of ps (-a with all), "" when absent.
func (b background) psLine(name string, all bool) string {
	args := []string{"ps"}
	if all {
		args = append(args, "-a")
	}
	for _, l := range strings.Split(b.must(args...), "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == name {
			return l
		}
	}
	return ""
}

// startDetached is run -d, timed to its printing the name.
func (b background) startDetached(name string, args ...string) {
	b.t.Helper()
	start := time.Now()
	out := b.must(append([]string{"run", "-d", "--name", name, "--accel", "tcg"}, args...)...)
	b.t.Logf("run -d to ready (%s printed): %s", name, time.Since(start).Round(10*time.Millisecond))
	if out != name+"\n" {
		b.t.Fatalf("run -d printed %q, want the name", out)
	}
	// Ready means the agent answers now, not once it has booted.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := agent.Dial(ctx, filepath.Join(b.state, name, state.AgentSocket))
	if err == nil {
		err = c.Ping(ctx)
		c.Close()
	}
	if err != nil {
		b.t.Fatalf("run -d returned, but the agent does not answer: %v", err)
	}
}

// TestDetached is issue 20's background flow on both arches: run -d
// returns the name, a second VM of that name is refused, ps shows it
// running with its port, the port serves, logs shows the container's
// output, stop runs the image's TERM handler and leaves no QEMU, ps -a
// shows the container's status, rm forgets it.
func TestDetached(t *testing.T) {
	if testing.Short() {
		t.Skip("boots VMs")
	}
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			t.Parallel()
			fixtures.NeedTools(t, map[string]string{"amd64": "qemu-system-x86_64", "arm64": "qemu-system-aarch64"}[arch], "curl", "pgrep")
			dir := convertBusybox(t, arch, "--cmd", shellCmd(detachedScript))
			b := newBackground(t)
			name, port := "dm-"+arch, freePort(t)
			b.startDetached(name, "-p", fmt.Sprintf("%d:8080", port), dir)
			if _, stderr, code := b.c2vm("run", "-d", "--name", name, "--accel", "tcg", dir); code != 1 ||
				stderr != fmt.Sprintf("c2vm: name in use: %s is taken by a running VM (c2vm stop %s)\n", name, name) {
				t.Errorf("a second run -d --name %s: exit %d, %q; want 1 and the name taken", name, code, stderr)
			}
			ps := b.psLine(name, false)
			for _, want := range []string{" running ", fmt.Sprintf(" 127.0.0.1:%d->8080/tcp ", port), " " + arch + " ", " " + dir} {
				if !strings.Contains(ps+" ", want) {
					t.Errorf("ps line %q lacks %q", ps, want)
				}
			}
			page, took := curlUntil(t, fmt.Sprintf("http://127.0.0.1:%d/", port), 4*time.Minute, nil)
			t.Logf("ready to the first page served: %s", took.Round(100*time.Millisecond))
			if want := map[string]string{"amd64": "served by x86_64\n", "arm64": "served by aarch64\n"}[arch]; page != want {
				t.Errorf("page %q, want %q", page, want)
			}
			if out, stderr, code := b.c2vm("exec", name, "--", "sh", "-c", "echo hello from exec; exit 5"); code != 5 || out != "hello from exec\n" {
				t.Errorf("exec: exit %d, %q (stderr %q); want 5 and its line", code, out, stderr)
			}
			if logs := b.must("logs", name); !strings.Contains(logs, "ready\n") || strings.Contains(logs, "C2VM_") {
				t.Errorf("logs %q: want the container's ready line and no protocol line", logs)
			}
			follow := exec.Command(c2vmBinary(t), "logs", "-f", name)
			follow.Env = append(os.Environ(), state.EnvDir+"="+b.state)
			var followed bytes.Buffer
			follow.Stdout = &followed
			if err := follow.Start(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if out := b.must("stop", name); out != name+"\n" {
				t.Errorf("stop printed %q", out)
			}
			t.Logf("stop: %s", time.Since(start).Round(10*time.Millisecond))
			if out, err := exec.Command("pgrep", "-f", dir).Output(); err == nil {
				t.Errorf("QEMU still runs after stop: %s", out)
			}
			waitFollow(t, follow)
			if got := followed.String(); !strings.HasPrefix(got, "ready\n") || !strings.HasSuffix(got, "got TERM as 1000\n") {
				t.Errorf("logs -f: %q, want from ready to the TERM handler's line", got)
			}
			if ps := b.psLine(name, false); ps != "" {
				t.Errorf("ps lists a stopped VM: %q", ps)
			}
			if ps := b.psLine(name, true); !strings.Contains(ps, " exited (7) ") {
				t.Errorf("ps -a: %q, want exited (7) (the TERM handler's status)", ps)
			}
			if logs := b.must("logs", "--tail", "1", name); logs != "got TERM as 1000\n" {
				t.Errorf("logs --tail 1 after stop: %q, want the TERM handler's line", logs)
			}
			b.must("rm", name)
			if b.record(name) != nil {
				t.Errorf("ps -a still lists %s after rm", name)
			}
			if _, stderr, code := b.c2vm("logs", name); code != 1 || stderr != "c2vm: no such VM: "+name+"\n" {
				t.Errorf("logs after rm: exit %d, %q", code, stderr)
			}
		})
	}
}

// TestDetachedKilled: a running VM cannot be rm'd without -f; once its
// QEMU is SIGKILLed it shows as exited with c2vm run's status for a VM
// that reported none (3), its logs stay readable, and rm forgets it.
func TestDetachedKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64")
	dir := convertBusybox(t, "amd64", "--cmd", shellCmd(`echo ready; while :; do sleep 1; done`))
	b := newBackground(t)
	b.startDetached("killed", dir)
	if _, stderr, code := b.c2vm("rm", "killed"); code != 1 || !strings.Contains(stderr, "VM killed is running: stop it first") {
		t.Errorf("rm of a running VM: exit %d, %q; want it refused", code, stderr)
	}
	for end := time.Now().Add(4 * time.Minute); b.must("logs", "killed") != "ready\n"; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("the container did not print ready; logs %q", b.must("logs", "killed"))
		}
	}
	rec := b.record("killed")
	if rec == nil || rec.QEMUPid == 0 {
		t.Fatalf("ps --json: %+v, want the QEMU pid", rec)
	}
	if err := syscall.Kill(rec.QEMUPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(time.Minute); b.psLine("killed", false) != "" && time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
	}
	if ps := b.psLine("killed", true); !strings.Contains(ps, " exited (3) ") {
		t.Errorf("ps -a after QEMU's SIGKILL: %q, want exited (3)", ps)
	}
	if rec := b.record("killed"); rec == nil || !strings.Contains(rec.Error, "no exit status from the VM") {
		t.Errorf("record after QEMU's SIGKILL: %+v, want the missing status named", rec)
	}
	if logs := b.must("logs", "killed"); logs != "ready\n" {
		t.Errorf("logs of a killed VM: %q", logs)
	}
	b.must("rm", "killed")
}

// TestDetachedIdle: run -d --idle-timeout stops the VM by itself, as the
// power button does (the TERM handler runs), once no exec session has
// been open for that long; an exec session keeps it up meanwhile.
func TestDetachedIdle(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	fixtures.NeedTools(t, "qemu-system-x86_64")
	dir := convertBusybox(t, "amd64", "--cmd", shellCmd(detachedScript))
	b := newBackground(t)
	b.startDetached("idle", "--idle-timeout", "20s", dir)
	start := time.Now()
	if out, stderr, code := b.c2vm("exec", "idle", "--", "sleep", "25"); code != 0 {
		t.Fatalf("exec sleep 25: exit %d, %q %q", code, out, stderr)
	}
	if ps := b.psLine("idle", false); !strings.Contains(ps, " running ") {
		t.Errorf("the VM stopped while an exec session was open: %q", ps)
	}
	for end := time.Now().Add(3 * time.Minute); b.psLine("idle", false) != "" && time.Now().Before(end); {
		time.Sleep(500 * time.Millisecond)
	}
	if b.psLine("idle", false) != "" {
		t.Fatalf("the VM still runs %s after the exec began", time.Since(start).Round(time.Second))
	}
	t.Logf("stopped by itself %s after the exec began", time.Since(start).Round(100*time.Millisecond))
	if ps := b.psLine("idle", true); !strings.Contains(ps, " exited (7) ") {
		t.Errorf("ps -a: %q, want exited (7): the TERM handler's status", ps)
	}
	if logs := b.must("logs", "--tail", "1", "idle"); logs != "got TERM as 1000\n" {
		t.Errorf("logs: %q, want the TERM handler's line", logs)
	}
}

// TestDetachedRefused: logs, stop and rm of a name no VM has, and run -d
// of a directory that is no VM or with a host port in use, are one clear
// line each, exit 1, and leave no record.
func TestDetachedRefused(t *testing.T) {
	b := newBackground(t)
	for _, cmd := range []string{"logs", "stop", "rm"} {
		if _, stderr, code := b.c2vm(cmd, "nosuchvm"); code != 1 || stderr != "c2vm: no such VM: nosuchvm\n" {
			t.Errorf("%s of an unknown VM: exit %d, %q", cmd, code, stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(b.state, "nosuchvm")); err == nil {
		t.Errorf("a lookup created the VM's directory")
	}
	notVM := t.TempDir()
	if _, stderr, code := b.c2vm("run", "-d", notVM); code != 1 || stderr != "c2vm: "+notVM+": not a bootable c2vm output (no manifest.json)\n" {
		t.Errorf("run -d of a directory that is no VM: exit %d, %q", code, stderr)
	}
	dir := convertBusybox(t, "amd64")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if _, stderr, code := b.c2vm("run", "-d", "--name", "busy", "-p", fmt.Sprintf("%d:8080", port), dir); code != 1 ||
		!strings.HasPrefix(stderr, fmt.Sprintf("c2vm: host port in use: 127.0.0.1:%d/tcp", port)) || strings.Count(stderr, "\n") != 1 {
		t.Errorf("run -d with a host port in use: exit %d, %q", code, stderr)
	}
	if names := b.names(); names != "" {
		t.Errorf("refused runs left records: %s", names)
	}
}

// waitFollow waits for logs -f to end by itself, as the VM has exited.
func waitFollow(t *testing.T, follow *exec.Cmd) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- follow.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f: %v", err)
		}
	case <-time.After(30 * time.Second):
		follow.Process.Kill()
		t.Errorf("logs -f still runs 30s after the VM exited")
	}
}
