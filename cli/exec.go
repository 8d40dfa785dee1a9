package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/c2vm/c2vm/bootcfg/wire"
	"github.com/c2vm/c2vm/launch/agent"
	"github.com/c2vm/c2vm/launch/state"
)

// execArgs are exec's flags.
type execArgs struct {
	interactive, tty bool
	user, workdir    string
	env              []string
	socket           string
	wait             time.Duration
}

func (a *app) execCmd() *cobra.Command {
	e := &execArgs{}
	cmd := &cobra.Command{
		Use:   "exec [flags] NAME|--socket PATH -- CMD [ARG...]",
		Short: "run a command in a running VM's container",
		Long: `Run a command in a running VM's container, as docker exec: in its root,
as its user, with its environment and working directory (-u, -e, -w
override them). The exit status is the command's (126 not executable, 127
not found). NAME is a VM started by c2vm run -d; --socket reaches a VM
started otherwise (qemu.sh: DIR/agent.sock, or $C2VM_AGENT_SOCKET).`,
		Args: execPositional,
		RunE: func(cmd *cobra.Command, args []string) error {
			args, dash := nameDash(cmd, args)
			return a.exec(cmd.Context(), e, args, dash)
		},
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&e.interactive, "interactive", "i", false, "pass stdin to the command (its end closes the command's stdin)")
	fs.BoolVarP(&e.tty, "tty", "t", false, "run the command on a terminal in the VM (this terminal in raw mode)")
	fs.StringVarP(&e.user, "user", "u", "", "USER[:GROUP], names or ids of the container's /etc/passwd and /etc/group")
	fs.StringVarP(&e.workdir, "workdir", "w", "", "working directory in the container")
	fs.StringArrayVarP(&e.env, "env", "e", nil, "set an environment variable K=V (repeatable)")
	fs.StringVar(&e.socket, "socket", "", "the VM's agent socket, instead of NAME")
	fs.DurationVar(&e.wait, "connect-timeout", 30*time.Second, "how long to wait for the agent (an exec holds it until its end)")
	return cmd
}

// execPositional wants NAME (or --socket) and a command after it.
func execPositional(cmd *cobra.Command, args []string) error {
	socket, _ := cmd.Flags().GetString("socket")
	names := 1
	if socket != "" {
		names = 0
	}
	args, dash := nameDash(cmd, args)
	if dash < 0 {
		dash = min(names, len(args))
	}
	switch {
	case dash != names && socket != "":
		return usagef("exec --socket takes no NAME, got %d", dash)
	case dash != names:
		return usagef("exec takes one NAME (or --socket PATH), got %d", dash)
	case len(args) == dash:
		return usagef("exec needs a command: c2vm exec NAME -- CMD [ARG...]")
	}
	return nil
}

// nameDash is the arguments and the index of "--" in them: with
// interspersed flags off (the command's own flags follow NAME), pflag
// keeps a "--" after NAME as an argument, and here it ends NAME's part.
func nameDash(cmd *cobra.Command, args []string) ([]string, int) {
	dash := cmd.ArgsLenAtDash()
	if socket, _ := cmd.Flags().GetString("socket"); socket != "" || dash >= 0 || len(args) < 2 || args[1] != "--" {
		return args, dash
	}
	return append([]string{args[0]}, args[2:]...), 1
}

func (e *execArgs) process(cmd []string) (wire.Process, error) {
	for _, kv := range e.env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return wire.Process{}, usagef("-e %q: want K=V", kv)
		}
	}
	return wire.Process{Args: cmd, Env: e.env, User: e.user, Cwd: e.workdir, TTY: e.tty}, nil
}

// socketPath finds the agent's socket: --socket, else NAME's in the state
// directory (c2vm run -d).
func (e *execArgs) socketPath(args []string) (string, error) {
	if e.socket != "" {
		return e.socket, nil
	}
	st, err := state.Open()
	if err != nil {
		return "", err
	}
	return st.AgentSocket(args[0])
}

func (a *app) exec(ctx context.Context, e *execArgs, args []string, dash int) error {
	if dash < 0 {
		dash = 1 // NAME CMD...
		if e.socket != "" {
			dash = 0
		}
	}
	p, err := e.process(args[dash:])
	if err != nil {
		return err
	}
	sock, err := e.socketPath(args)
	if err != nil {
		return err
	}
	dctx, cancel := context.WithTimeout(ctx, e.wait)
	defer cancel()
	c, err := agent.Dial(dctx, sock)
	if err != nil {
		return err
	}
	defer c.Close()
	return exitStatusOf(a.runExec(c, e, p))
}

// exitStatusOf is exec's status: the command's.
func exitStatusOf(code int, err error) error {
	var se *agent.StartError
	switch {
	case errors.As(err, &se):
		return &ExitError{Code: se.Status, Message: se.Message}
	case err != nil:
		return err
	case code != 0:
		return &ExitError{Code: code}
	}
	return nil
}

// runExec runs p with this terminal's streams, signals and size. It does
// not stop on the context: SIGINT and SIGTERM go to the command.
func (a *app) runExec(c *agent.Conn, e *execArgs, p wire.Process) (int, error) {
	ctx := context.Background()
	in := int(os.Stdin.Fd())
	if e.tty && term.IsTerminal(in) {
		if w, h, err := term.GetSize(in); err == nil {
			p.Cols, p.Rows = uint16(w), uint16(h)
		}
		old, err := term.MakeRaw(in)
		if err != nil {
			return 0, fmt.Errorf("terminal: %w", err)
		}
		defer term.Restore(in, old)
	}
	ap := agent.Process{Process: p, Stdout: a.stdout, Stderr: a.stderr}
	if e.interactive {
		ap.Stdin = os.Stdin
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGWINCH)
	defer signal.Stop(sigs)
	s, err := c.Exec(ctx, ap)
	if err != nil {
		return 0, err
	}
	go forward(s, sigs, in)
	return s.Wait(ctx)
}

// forward sends the signals c2vm exec gets to the command, and the
// terminal's new size on SIGWINCH.
func forward(s *agent.Session, sigs <-chan os.Signal, in int) {
	for sig := range sigs {
		if sig == syscall.SIGWINCH {
			if w, h, err := term.GetSize(in); err == nil {
				s.Resize(uint16(h), uint16(w))
			}
			continue
		}
		s.Signal(sig.(syscall.Signal))
	}
}
