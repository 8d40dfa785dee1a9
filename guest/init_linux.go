package guest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// initState is what the boot has learnt so far.
type initState struct {
	console    io.Writer
	args       plan.Args // the c2vm.* kernel arguments, once read
	moduleErrs []string  // optional modules that failed, for FindRoot's report
	status     int       // the process's exit status, once Run is done
	ran        bool
	power      chan struct{} // receives a power button press
	// container receives the container's process, with the overrides
	// applied, once it has started: the agent starts exec'd processes as it.
	container chan specs.Process
	children  children // exec'd processes, reaped by supervise
}

func (s *initState) logf(format string, a ...any) {
	if s.args.Debug {
		fmt.Fprintf(s.console, plan.LogPrefix+format+"\n", a...)
	}
}

// Main is PID 1. It never returns: it powers the VM off.
func Main() {
	s := &initState{console: openConsole(), power: make(chan struct{}, 1), container: make(chan specs.Process, 1)}
	status := plan.StatusInitFailed
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(s.console, "%s%s\n", plan.ErrorLine, oneLine(fmt.Sprintf("panic: %v: %s", r, debug.Stack())))
			status = plan.StatusInitFailed
		}
		finish(s.console, status)
	}()
	if err := s.boot(); err != nil {
		fmt.Fprintf(s.console, "%s%v\n", plan.LogPrefix, err)
		fmt.Fprintf(s.console, "%s%s\n", plan.ErrorLine, oneLine(err.Error()))
		return
	}
	status = s.status
}

func openConsole() io.Writer {
	if f, err := os.OpenFile("/dev/console", os.O_WRONLY|unix.O_NOCTTY, 0); err == nil {
		return f
	}
	return os.Stdout
}

func (s *initState) boot() error {
	f, err := os.Open(plan.Path)
	if err != nil {
		return fmt.Errorf("reading boot plan: %w", err)
	}
	p, err := plan.Read(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", plan.Path, err)
	}
	return s.execute(p)
}

// execute runs the plan's steps in order. A failing step stops the boot,
// named with its number, unless it is optional.
func (s *initState) execute(p *plan.Plan) error {
	n := len(p.Steps)
	for i, st := range p.Steps {
		s.logf("step %d/%d: %s", i+1, n, st)
		debug := s.args.Debug
		err := s.do(st.Action)
		if !debug && s.args.Debug {
			// c2vm.debug was just read: show the steps already done.
			for j := 0; j <= i; j++ {
				s.logf("step %d/%d: %s (done)", j+1, n, p.Steps[j])
			}
		}
		if s.console == os.Stdout {
			// The kernel gives PID 1 /dev/console only when the
			// initramfs has the node; devtmpfs brings it.
			s.console = openConsole()
		}
		switch {
		case err == nil:
		case st.Optional:
			s.logf("step %d/%d: %s: %v (optional, going on)", i+1, n, st.Action, err)
			if _, ok := st.Action.(*plan.LoadModule); ok {
				s.moduleErrs = append(s.moduleErrs, fmt.Sprintf("%s: %v", st.Action, err))
			}
		default:
			return fmt.Errorf("step %d/%d: %s: %w", i+1, n, st.Action, err)
		}
	}
	if !s.ran {
		return errors.New("the boot plan has no run step: nothing to run")
	}
	return nil
}

// do runs one action: the one place that maps a step kind to its code.
func (s *initState) do(a plan.Action) error {
	switch a := a.(type) {
	case *plan.Mount:
		return mount(a)
	case *plan.Cmdline:
		return s.readArgs()
	case *plan.LoadModule:
		return loadModule(a.Path)
	case *plan.FindRoot:
		return s.findRoot(a)
	case *plan.VerityRoot:
		return s.verityRoot(a)
	case *plan.Mkdir:
		return os.MkdirAll(a.Path, os.FileMode(a.Mode))
	case *plan.Move:
		return move(a.From, a.To)
	case *plan.WriteFile:
		return writeFile(a)
	case *plan.Hostname:
		return unix.Sethostname([]byte(a.Name))
	case *plan.RegisterBinfmt:
		return registerBinfmt(a.Line())
	case *plan.BinfmtD:
		return binfmtD(a.Files)
	case *plan.SwitchRoot:
		return switchRoot(a.Path)
	case *plan.MaskPath:
		return maskPath(a.Path)
	case *plan.ReadonlyPath:
		return readonlyPath(a.Path)
	case *plan.Network:
		return s.network(a)
	case *plan.MountVolume:
		return s.mountVolume(a)
	case *plan.Unmount:
		return unmountVolume(a.Path)
	case *plan.Shares:
		return s.mountShares()
	case *plan.PowerButton:
		return s.watchPower()
	case *plan.Agent:
		return s.startAgent(a)
	case *plan.Run:
		if s.ran {
			return errors.New("the process has run already")
		}
		code, err := s.runProcess(a)
		s.status, s.ran = code, err == nil
		return err
	}
	return fmt.Errorf("this init cannot run a %q step", a.Op())
}

// watchPower sends each press of the power button to s.power.
func (s *initState) watchPower() error {
	src, err := watchPowerButton(func() {
		select {
		case s.power <- struct{}{}:
		default:
		}
	})
	if len(src) > 0 {
		s.logf("power button: %v", src)
	}
	return err
}

// readArgs reads the c2vm.* kernel arguments.
func (s *initState) readArgs() error {
	b, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		return err
	}
	s.args, err = plan.ParseArgs(string(b))
	return err
}

// finish ends the VM: stop what is left, sync, report, power off.
func finish(console io.Writer, status int) {
	unix.Kill(-1, unix.SIGTERM)
	time.Sleep(100 * time.Millisecond)
	unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	fmt.Fprintf(console, "%s%d\n", plan.StatusLine, status)
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	for {
		time.Sleep(time.Hour)
	}
}
