// Package launch boots a converted VM with QEMU for `c2vm run`: it streams
// the container's output, hides the kernel's unless asked, and returns the
// container's exit status from the init's status line.
//
//	code, err := launch.Run(ctx, launch.Options{Dir: "out", Timeout: time.Minute,
//		Cmd: []string{"id"}, Stdout: os.Stdout, Stderr: os.Stderr})
//
// The QEMU command line is vmconfig.QEMUArgs, the same one qemu.sh runs,
// with the converted forwards changed by Publish, PublishAll and
// NoPublish; a published host port that is taken fails the run before
// QEMU starts (ErrPortInUse).
// Console lines: "[ 1.23]" kernel lines are dropped, "c2vm-init: " and
// "C2VM_INIT_ERROR=" lines go to Stderr, the rest (the container's
// output) to Stdout with CRLF turned into LF; Debug passes everything to
// Stdout. The "C2VM_EXIT_STATUS=<n>" line is consumed.
package launch

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"time"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/vmconfig"
	"github.com/c2vm/c2vm/vmdir"
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
	Debug   bool      // pass the kernel's and the init's console lines through
	Cmd     []string  // replaces the container's command; nil: none
	Stdout  io.Writer `json:"-"`
	Stderr  io.Writer `json:"-"`
	QEMU    string    // binary override
	// StopTimeout is the container's grace period when the run is
	// cancelled (0: DefaultStopTimeout); the VM's init waits as long as its
	// plan says (convert's), so give the same value.
	StopTimeout time.Duration
	// Publish adds forwards to the converted ones, replacing any of the
	// same guest port; PublishAll publishes every EXPOSEd port on the
	// same host port of 127.0.0.1; NoPublish drops the converted ones.
	Publish    []plan.Forward
	PublishAll bool
	NoPublish  bool
	// Shares are host directories mounted in the container (-v).
	Shares []Share
	// A background run (c2vm run -d) puts QEMU's QMP socket at QMPSocket
	// (default: a temp dir) and the guest agent's port at AgentSocket
	// (default: none), and learns of QEMU's start through OnStart.
	QMPSocket   string
	AgentSocket string
	IdleTimeout time.Duration // the agent powers the VM off after this long without exec; 0: never
	OnStart     func(Running) `json:"-"`
}

// Running is what OnStart learns once QEMU runs.
type Running struct {
	Arch     string
	Forwards []plan.Forward
	QEMUPid  int
}

// ErrNotVM is returned for a directory that is not a bootable c2vm output.
var ErrNotVM = vmdir.ErrNotVM

// Run boots the VM in o.Dir and returns the container's exit status. A
// timeout returns StatusTimeout, a VM that ends without a status line
// StatusNoReport, each with an error describing it.
func Run(ctx context.Context, o Options) (int, error) {
	vm, d, err := loadVM(&o)
	if err != nil {
		return 1, err
	}
	accel, err := chooseAccel(ctx, o.Accel, vm, o.QEMU)
	if err != nil {
		return 1, err
	}
	sh, err := startShares(ctx, o.Shares, d.Shares(), vm.Memory)
	if err != nil {
		return 1, err
	}
	defer sh.stop()
	kargs := plan.Args{Cmd: o.Cmd, Debug: o.Debug, Shares: sh.kernel, Idle: o.IdleTimeout}.String()
	if !o.Debug {
		kargs = "quiet loglevel=1 " + kargs
	}
	args, err := vmconfig.QEMUArgs(vm, accel, vm.Dir+string(filepath.Separator), kargs)
	if err != nil {
		return 1, err
	}
	if vm.Arch == "amd64" {
		// Keep SeaBIOS off the serial console: only the guest's output
		// reaches the user (QEMU warns about the externally provided
		// fw_cfg item on stderr, which is shown only on failure).
		args = append(args, "-fw_cfg", "name=etc/sercon-port,string=0")
	}
	args = append(args, sh.qemu...)
	if o.AgentSocket != "" {
		agent, err := AgentArgs(o.AgentSocket, vm.Arch)
		if err != nil {
			return 1, err
		}
		args = append(args, agent...)
	}
	if started := o.OnStart; started != nil {
		o.OnStart = func(r Running) { r.Arch, r.Forwards = vm.Arch, vm.Forwards; started(r) }
	}
	if err := checkHostPorts(vm.Forwards); err != nil {
		return 1, err
	}
	return boot(ctx, o, qemuBinary(o.QEMU, vm), args)
}

// loadVM reads the VM's directory (every artifact checked); o's unset
// values take the converted ones.
func loadVM(o *Options) (vmconfig.VM, *vmdir.VM, error) {
	d, err := vmdir.Read(o.Dir)
	if err != nil {
		return vmconfig.VM{}, nil, err
	}
	if err := d.Bootable(); err != nil {
		return vmconfig.VM{}, nil, err
	}
	if o.Memory == 0 {
		o.Memory = d.Memory
	}
	if o.CPUs == 0 {
		o.CPUs = d.CPUs
	}
	if o.StopTimeout == 0 {
		o.StopTimeout = time.Duration(d.StopTimeout) * time.Second
	}
	fs, err := forwards(*o, &d.Manifest)
	if err != nil {
		return vmconfig.VM{}, nil, err
	}
	vm := d.Config()
	vm.Memory, vm.CPUs, vm.Forwards = o.Memory, o.CPUs, fs
	return vm, d, nil
}

// qemuBinary is the override, else the VM arch's qemu-system.
func qemuBinary(override string, vm vmconfig.VM) string {
	if override != "" {
		return override
	}
	a, _ := arch.VM(vm.Arch)
	return a.QEMU.Binary
}
