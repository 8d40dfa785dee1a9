// Package launch boots a converted VM with QEMU for `c2vm run`: it streams
// the container's output, hides the kernel's unless asked, and returns the
// container's exit status from the init's status line.
//
//	code, err := launch.Run(ctx, launch.Options{Dir: "out", Timeout: time.Minute,
//		Cmd: []string{"id"}, Stdout: os.Stdout, Stderr: os.Stderr})
//
// The QEMU command line is vmconfig.QEMUArgs, the same one qemu.sh runs.
// Console lines: "[ 1.23]" kernel lines are dropped, "c2vm-init: " and
// "C2VM_INIT_ERROR=" lines go to Stderr, the rest (the container's
// output) to Stdout with CRLF turned into LF; Debug passes everything to
// Stdout. The "C2VM_EXIT_STATUS=<n>" line is consumed.
package launch

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/c2vm/c2vm/vmconfig"
)

// Exit statuses of `c2vm run` itself, beside the container's own (which
// follow Docker: 125 the init failed, 126 not executable, 127 not found,
// 128+N killed by signal N).
const (
	StatusNoReport    = 3   // the VM stopped without reporting a status (panic, crash, QEMU error)
	StatusTimeout     = 124 // as timeout(1)
	StatusInterrupted = 130 // the caller cancelled (e.g. SIGINT), as a shell reports it
)

// Errors returned with those statuses.
var (
	ErrTimeout  = errors.New("timed out")
	ErrNoReport = errors.New("no exit status from the VM")
)

// Options for Run; the zero value of each is the default.
type Options struct {
	Dir     string
	Timeout time.Duration // 0: none
	Accel   string        // auto (default), kvm, tcg
	Memory  int           // MiB; 0: as converted (512)
	CPUs    int
	Debug   bool     // pass the kernel's and the init's console lines through
	Cmd     []string // replaces the container's command; nil: none
	Stdout  io.Writer
	Stderr  io.Writer
	QEMU    string // binary override
}

// manifest is the part of manifest.json the launcher reads.
type manifest struct {
	VMArch string `json:"vmArch"`
	Memory int    `json:"memory"` // as converted (--memory); 0 = default
	CPUs   int    `json:"cpus"`
	Kernel *struct {
		Version string `json:"version"`
	} `json:"kernel"`
}

// ErrNotVM is returned for a directory that is not a bootable c2vm output.
var ErrNotVM = errors.New("not a bootable c2vm output")

// Run boots the VM in o.Dir and returns the container's exit status. A
// timeout returns StatusTimeout, a VM that ends without a status line
// StatusNoReport, each with an error describing it.
func Run(ctx context.Context, o Options) (int, error) {
	vm, err := loadVM(o)
	if err != nil {
		return 1, err
	}
	accel, err := chooseAccel(ctx, o.Accel, vm, o.QEMU)
	if err != nil {
		return 1, err
	}
	extra := []string{"quiet", "loglevel=1"}
	if o.Debug {
		extra = []string{"c2vm.debug=1"}
	}
	if o.Cmd != nil {
		b, _ := json.Marshal(o.Cmd)
		extra = append(extra, "c2vm.cmd="+base64.StdEncoding.EncodeToString(b))
	}
	args, err := vmconfig.QEMUArgs(vm, accel, vm.Dir+string(filepath.Separator), strings.Join(extra, " "))
	if err != nil {
		return 1, err
	}
	if vm.Arch == "amd64" {
		// Keep SeaBIOS off the serial console: only the guest's output
		// reaches the user (QEMU warns about the externally provided
		// fw_cfg item on stderr, which is shown only on failure).
		args = append(args, "-fw_cfg", "name=etc/sercon-port,string=0")
	}
	bin := o.QEMU
	if bin == "" {
		q, _ := vmconfig.QEMUFor(vm.Arch)
		bin = q.Binary
	}
	return boot(ctx, o, bin, args)
}

func loadVM(o Options) (vmconfig.VM, error) {
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return vmconfig.VM{}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		return vmconfig.VM{}, fmt.Errorf("%s: %w: %v", o.Dir, ErrNotVM, err)
	}
	var m manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return vmconfig.VM{}, fmt.Errorf("%s/manifest.json: %w", o.Dir, err)
	}
	if m.VMArch == "" || m.Kernel == nil {
		return vmconfig.VM{}, fmt.Errorf("%s: %w (converted with --no-kernel?)", o.Dir, ErrNotVM)
	}
	if o.Memory == 0 {
		o.Memory = m.Memory
	}
	if o.CPUs == 0 {
		o.CPUs = m.CPUs
	}
	return vmconfig.VM{Arch: m.VMArch, Memory: o.Memory, CPUs: o.CPUs, Dir: dir,
		Kernel: "kernel", Initrd: "initramfs.img", Rootfs: "rootfs.img"}, nil
}

var hostArch = runtime.GOARCH

// chooseAccel resolves auto: KVM only for a VM of the host's arch, with
// /dev/kvm usable, and a probe boot that reaches the kernel's first
// message — /dev/kvm can exist and still hang guests.
func chooseAccel(ctx context.Context, accel string, vm vmconfig.VM, bin string) (string, error) {
	switch accel {
	case "kvm", "tcg":
		return accel, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("--accel %q: want auto, kvm or tcg", accel)
	}
	if vm.Arch != hostArch {
		return "tcg", nil
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return "tcg", nil
	} else {
		f.Close()
	}
	if probeKVM(ctx, vm, bin) {
		return "kvm", nil
	}
	return "tcg", nil
}

// probeKVM boots the VM's own kernel under KVM without an initramfs for at
// most ProbeTimeout and reports whether it printed its banner. A host
// whose KVM is broken (this project's build machine: /dev/kvm opens, the
// guest never prints) pays that probe once per host boot: the answer is
// cached under the host's boot_id in $C2VM_CACHE (kvm-probe-ARCH).
func probeKVM(ctx context.Context, vm vmconfig.VM, bin string) bool {
	q, err := vmconfig.QEMUFor(vm.Arch)
	if err != nil {
		return false
	}
	if bin == "" {
		bin = q.Binary
	}
	cache := probeCache(vm.Arch)
	if ok, found := readProbe(cache); found {
		return ok
	}
	ok := bootProbe(ctx, q, vm, bin)
	if ctx.Err() == nil {
		writeProbe(cache, ok)
	}
	return ok
}

// ProbeTimeout bounds the KVM probe; a working KVM prints the kernel's
// banner in well under a second.
var ProbeTimeout = 5 * time.Second

func bootProbe(ctx context.Context, q vmconfig.QEMU, vm vmconfig.VM, bin string) bool {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	args := append(append([]string{}, q.Machine...), "-accel", "kvm", "-m", "128", "-nographic", "-no-reboot", "-nic", "none",
		"-kernel", filepath.Join(vm.Dir, vm.Kernel),
		"-append", "console="+vmconfig.Console(vm.Arch)+" panic=-1 rdinit=/nonexistent")
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil || cmd.Start() != nil {
		return false
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Linux version") {
			return true
		}
	}
	return false
}

// probeCache is the probe's cache file, "" when there is no home.
func probeCache(arch string) string {
	dir := os.Getenv("C2VM_CACHE")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(home, ".cache", "c2vm")
	}
	return filepath.Join(dir, "kvm-probe-"+arch)
}

// bootID identifies this boot of the host (proc(5)), so a cached probe
// is redone after a reboot, e.g. one that fixed KVM.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readProbe(file string) (ok, found bool) {
	id := bootID()
	if file == "" || id == "" {
		return false, false
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return false, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] != id {
		return false, false
	}
	return f[1] == "kvm", true
}

// writeProbe caches a probe's result; failing to is harmless.
func writeProbe(file string, ok bool) {
	id := bootID()
	if file == "" || id == "" {
		return
	}
	accel := "tcg"
	if ok {
		accel = "kvm"
	}
	if os.MkdirAll(filepath.Dir(file), 0o755) == nil {
		os.WriteFile(file, []byte(id+" "+accel+"\n"), 0o644)
	}
}

var (
	statusRE   = regexp.MustCompile(`C2VM_EXIT_STATUS=(\d+)`)
	kernelLine = regexp.MustCompile(`^\[\s*\d+\.\d+\]`)
)

// StatusGrace is how long QEMU may keep running after the status line
// (the init powers off right after it); then it is killed.
var StatusGrace = 10 * time.Second

// boot runs QEMU and follows its console.
func boot(ctx context.Context, o Options, bin string, args []string) (int, error) {
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.Timeout, ErrTimeout)
		defer cancel()
	}
	// A separate cancel for the grace period keeps ctx.Err() meaning "the
	// caller's deadline or cancellation".
	qctx, kill := context.WithCancel(ctx)
	defer kill()
	cmd := exec.CommandContext(qctx, bin, args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 1, err
	}
	var qemuErr strings.Builder
	cmd.Stderr = &qemuErr
	if err := cmd.Start(); err != nil {
		return 1, fmt.Errorf("starting %s: %w", bin, err)
	}
	c := follow(out, o, func() { time.AfterFunc(StatusGrace, kill) })
	waitErr := cmd.Wait()
	switch {
	case c.status >= 0:
		return c.status, nil
	case errors.Is(context.Cause(ctx), ErrTimeout):
		return StatusTimeout, fmt.Errorf("%w after %s; VM killed", ErrTimeout, o.Timeout)
	case ctx.Err() != nil:
		return StatusInterrupted, ctx.Err()
	}
	return StatusNoReport, noReport(o, c, waitErr, qemuErr.String())
}

// noReport prints the last console lines and says why the VM ended.
func noReport(o Options, c console, waitErr error, qemuErr string) error {
	fmt.Fprintf(o.Stderr, "c2vm run: the VM stopped without reporting a status; last console lines:\n%s\n", strings.Join(c.last, "\n"))
	why := "the VM stopped without reporting a status"
	if c.panic != "" {
		why = "kernel panic: " + c.panic
	}
	if waitErr != nil && strings.TrimSpace(qemuErr) != "" {
		why += " (" + strings.TrimSpace(qemuErr) + ")"
	}
	return fmt.Errorf("%w: %s", ErrNoReport, why)
}

// console is what follow learnt from the VM's console.
type console struct {
	status int      // the container's exit status, -1 when none came
	last   []string // the last lastLines lines
	panic  string   // the kernel's panic message, from "Kernel panic"
}

const lastLines = 20

// follow copies the container's output to o.Stdout, the init's messages
// to o.Stderr, drops kernel lines unless debugging, and calls onStatus
// when the status line arrives.
func follow(r io.Reader, o Options, onStatus func()) console {
	c := console{status: -1}
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			c.line(line, o, onStatus)
		}
		if err != nil {
			return c
		}
	}
}

func (c *console) line(line string, o Options, onStatus func()) {
	text := strings.TrimRight(line, "\r\n")
	c.last = append(c.last, text)
	if len(c.last) > lastLines {
		c.last = c.last[1:]
	}
	// A panic's stack trace follows its message and pushes it out of
	// c.last; the first message is the one that says why.
	if i := strings.Index(text, "Kernel panic"); i >= 0 && c.panic == "" {
		c.panic = strings.TrimSpace(text[i:])
	}
	m := statusRE.FindStringSubmatchIndex(text)
	if m == nil {
		route(text, strings.HasSuffix(line, "\n"), o)
		return
	}
	if c.status < 0 {
		onStatus()
	}
	c.status, _ = strconv.Atoi(text[m[2]:m[3]])
	if m[0] > 0 {
		io.WriteString(o.Stdout, text[:m[0]])
	}
}

func route(text string, nl bool, o Options) {
	if nl {
		text += "\n"
	}
	switch {
	case o.Debug:
		io.WriteString(o.Stdout, text)
	case kernelLine.MatchString(text):
	case strings.HasPrefix(text, "c2vm-init: "), strings.HasPrefix(text, "C2VM_INIT_ERROR="):
		io.WriteString(o.Stderr, text)
	default:
		io.WriteString(o.Stdout, text)
	}
}
