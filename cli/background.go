package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/c2vm/c2vm/launch"
	"github.com/c2vm/c2vm/launch/detach"
	"github.com/c2vm/c2vm/launch/state"
)

// detachArgs are run -d's own flags.
type detachArgs struct {
	detach bool
	name   string
	idle   time.Duration
}

// check refuses -d's flags without -d.
func (d detachArgs) check() error {
	if !d.detach && (d.name != "" || d.idle != 0) {
		return usagef("--name and --idle-timeout need -d (--detach)")
	}
	if d.name != "" {
		if err := state.CheckName(d.name); err != nil {
			return usagef("%v", err)
		}
	}
	return nil
}

// startDetached is run -d: the VM starts in the background under a
// supervisor (c2vm supervise NAME, re-executed) and its name is printed
// once its agent answers.
func (a *app) startDetached(ctx context.Context, o launch.Options, d detachArgs) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding c2vm to re-execute: %w", err)
	}
	s, err := state.Open()
	if err != nil {
		return err
	}
	o.IdleTimeout = d.idle
	name, err := detach.Start(ctx, s, detach.Options{Name: d.name, Launch: o,
		Supervisor: []string{exe, "supervise"}, Stderr: a.stderr})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(a.stdout, name)
	return err
}

func (a *app) superviseCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "supervise NAME",
		Short:  "run a background VM (started by run -d)",
		Hidden: true,
		Args:   exactly(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := state.Open()
			if err != nil {
				return err
			}
			// Descriptor 3: the VM's supervisor.lock, from run -d.
			lock := os.NewFile(3, "supervisor.lock")
			if lock == nil {
				return errors.New("supervise is started by c2vm run -d")
			}
			return detach.Supervise(cmd.Context(), s, args[0], lock, a.stderr)
		},
	}
}

func (a *app) psCmd() *cobra.Command {
	var all, asJSON bool
	cmd := &cobra.Command{
		Use:   "ps [-a] [--json]",
		Short: "list the VMs started with run -d",
		Args:  exactly(0, ""),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := state.Open()
			if err != nil {
				return err
			}
			recs, err := s.List()
			if err != nil {
				return err
			}
			shown := []state.Record{}
			for _, r := range recs {
				if all || r.Status != state.Exited {
					shown = append(shown, r)
				}
			}
			if asJSON {
				return a.printJSON(shown)
			}
			return a.psTable(shown)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show exited VMs too")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of the VMs' records")
	return cmd
}

func (a *app) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", b)
	return err
}

// psTable prints ps's columns, as docker ps does.
func (a *app) psTable(recs []state.Record) error {
	w := tabwriter.NewWriter(a.stdout, 0, 8, 3, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tPORTS\tARCH\tDIR")
	now := time.Now()
	for _, r := range recs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.StatusText(now), r.PortsText(), r.Arch, r.Dir)
	}
	return w.Flush()
}

func (a *app) logsCmd() *cobra.Command {
	var follow bool
	var tail string
	cmd := &cobra.Command{
		Use:   "logs [-f] [--tail N] NAME",
		Short: "print a background VM's container output",
		Args:  exactly(1, "NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n := -1
			if tail != "all" {
				var err error
				if n, err = strconv.Atoi(tail); err != nil || n < 0 {
					return usagef("--tail %q: want a number of lines or all", tail)
				}
			}
			return a.logs(cmd.Context(), args[0], n, follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing the output until the VM exits")
	cmd.Flags().StringVarP(&tail, "tail", "n", "all", "print only the last N lines")
	return cmd
}

// logs prints name's console log, and follows it while the VM runs.
func (a *app) logs(ctx context.Context, name string, n int, follow bool) error {
	s, err := state.Open()
	if err != nil {
		return err
	}
	rec, err := s.Get(name)
	if err != nil {
		return err
	}
	path := s.Path(name, state.ConsoleLog)
	b, off, err := state.TailLog(path, n)
	if err != nil {
		return err
	}
	if _, err := a.stdout.Write(b); err != nil || !follow || rec.Status == state.Exited {
		return err
	}
	return state.FollowLog(ctx, path, off, a.stdout, func() bool {
		r, err := s.Get(name)
		return err != nil || r.Status == state.Exited
	})
}

func (a *app) stopCmd() *cobra.Command {
	var secs int
	cmd := &cobra.Command{
		Use:   "stop [-t SECONDS] NAME...",
		Short: "stop background VMs: the power button, then QEMU is gone",
		Args:  atLeastOne("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			timeout := time.Duration(secs) * time.Second
			if secs < 0 {
				timeout = -1
			}
			return a.eachVM(args, func(s *state.Store, name string) error {
				return detach.Stop(cmd.Context(), s, name, timeout)
			})
		},
	}
	cmd.Flags().IntVarP(&secs, "time", "t", -1, "seconds to wait for the VM to stop before killing it (default: its stop timeout)")
	return cmd
}

func (a *app) rmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [-f] NAME...",
		Short: "forget stopped background VMs and their logs",
		Args:  atLeastOne("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.eachVM(args, func(s *state.Store, name string) error {
				return detach.Remove(s, name, force)
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running VM first")
	return cmd
}

// eachVM runs f for each name, printing the names it served, as docker
// stop and rm do; the failures are joined into one line.
func (a *app) eachVM(names []string, f func(*state.Store, string) error) error {
	s, err := state.Open()
	if err != nil {
		return err
	}
	var errs []string
	for _, name := range names {
		if err := f(s, name); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fmt.Fprintln(a.stdout, name)
	}
	if errs != nil {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// atLeastOne wants one or more arguments.
func atLeastOne(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return usagef("%s takes one or more %s", cmd.Name(), what)
		}
		return nil
	}
}
