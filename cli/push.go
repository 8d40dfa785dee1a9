package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/kubevirt"
	"github.com/c2vm/c2vm/vmconfig"
	"github.com/c2vm/c2vm/vmimage"
)

// pushArgs are push's and pull's flags.
type pushArgs struct {
	ro          image.Options
	kubevirt    string
	output      string
	quiet, json bool
}

// twoArgs checks push's DIR and REF.
func twoArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != 2 {
			return usagef("%s takes %s, got %d arguments", cmd.Name(), what, len(args))
		}
		return nil
	}
}

func (a *app) pushCmd() *cobra.Command {
	p := &pushArgs{}
	cmd := &cobra.Command{
		Use:   "push [flags] DIR docker://[REGISTRY/]REPO[:TAG]",
		Short: "push a converted VM (convert --disk) to a registry as a KubeVirt containerDisk; prints its digest",
		Long: `push writes a VM directory to a registry: per platform, an OCI image that is a
KubeVirt containerDisk (the --disk image alone in /disk/, 107:107, 0440) and
also carries every other artifact in /c2vm/, so c2vm pull restores the
directory byte for byte. A --platform all directory is one image index.
Each VOLUME's data disk is pushed too, as an image of its own (TAG-data-N).
Blobs go first, the manifest (or index) last: a failed push leaves no tag.
Pushing the same directory again gives the same digest and uploads nothing.`,
		Args: twoArgs("DIR and docker://REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.push(cmd.Context(), a, args[0], args[1])
		},
	}
	fs := cmd.Flags()
	registryFlags(fs, &p.ro.Platform, &p.ro.Creds, &p.ro.InsecureTLS, &p.ro.StallTimeout)
	fs.MarkHidden("platform") // refused: a push takes every platform of DIR
	fs.StringVar(&p.kubevirt, "kubevirt", "", "also write KubeVirt manifests (VirtualMachine pinned by digest, a CDI DataVolume per VOLUME, Service for EXPOSEd ports) to `FILE`; - for stdout (then the digest is not printed)")
	fs.BoolVarP(&p.quiet, "quiet", "q", false, "no progress lines (nor bars)")
	fs.BoolVar(&p.json, "json", false, "print one JSON document on stdout: ref, digest, pinned reference, platforms, bytes uploaded ({\"error\": ...} on failure)")
	cmd.MarkFlagDirname("output")
	return cmd
}

func (a *app) pullCmd() *cobra.Command {
	p := &pushArgs{}
	cmd := &cobra.Command{
		Use:   "pull [flags] docker://[REGISTRY/]REPO[:TAG|@DIGEST] -o DIR",
		Short: "fetch a VM that c2vm push wrote back into a directory, every digest checked",
		Args:  exactly(1, "docker://REF"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return p.pull(cmd.Context(), a, args[0])
		},
	}
	fs := cmd.Flags()
	registryFlags(fs, &p.ro.Platform, &p.ro.Creds, &p.ro.InsecureTLS, &p.ro.StallTimeout)
	fs.Lookup("platform").Usage = "the platform os/arch[/variant] to fetch from a multi-platform VM (default: every platform, each in DIR/<os>-<arch>[-<variant>]/)"
	fs.StringVarP(&p.output, "output", "o", "", "output directory (required)")
	fs.BoolVarP(&p.quiet, "quiet", "q", false, "no progress lines")
	fs.BoolVar(&p.json, "json", false, "print one JSON document on stdout: ref, digest, platforms, directory ({\"error\": ...} on failure)")
	completeRegistryFlags(cmd)
	cmd.MarkFlagDirname("output")
	return cmd
}

func (p *pushArgs) push(ctx context.Context, a *app, dir, ref string) error {
	if p.ro.Platform != "" {
		return usagef("push takes every platform of DIR; give one platform's directory (DIR/<os>-<arch>) to push one")
	}
	if p.kubevirt == "-" && p.json {
		return usagef("--kubevirt - and --json both want stdout")
	}
	var o vmimage.Options
	var err error
	if o.Epoch, err = sourceDateEpoch(); err != nil {
		return err
	}
	if !p.quiet {
		fmt.Fprintf(a.stderr, "c2vm: pushing %s to %s\n", dir, ref)
		o.Meter = terminalMeter(a.stderr)
	}
	// The SBOM and provenance go along as referrers of the VM.
	if o.Referrers, err = vmimage.SupplyChain(dir); err != nil {
		return err
	}
	res, err := vmimage.Push(ctx, dir, ref, o, p.ro)
	if err != nil {
		return err
	}
	if p.kubevirt != "" {
		if err := writeKubevirt(p.kubevirt, a.stdout, res); err != nil {
			return err
		}
	}
	switch {
	case p.json:
		return writeJSON(a.stdout, res)
	case p.kubevirt != "-":
		_, err = fmt.Fprintln(a.stdout, res.Digest)
	}
	return err
}

func (p *pushArgs) pull(ctx context.Context, a *app, ref string) error {
	if p.output == "" {
		return usagef("pull needs -o DIR")
	}
	if !p.quiet {
		fmt.Fprintf(a.stderr, "c2vm: pulling %s into %s\n", ref, p.output)
	}
	res, err := vmimage.Pull(ctx, ref, p.output, p.ro)
	if err != nil || !p.json {
		return err
	}
	return writeJSON(a.stdout, res)
}

// writeKubevirt writes the manifests for a pushed VM to file (- for w),
// the file written whole or not at all.
func writeKubevirt(file string, w io.Writer, res *vmimage.Result) error {
	m := res.Manifest
	vm := kubevirt.VM{
		Name: kubevirt.Name(repoOf(res.Pinned)), Image: res.Pinned,
		Memory: cmp.Or(m.Memory, vmconfig.DefaultMemory), CPUs: cmp.Or(m.CPUs, vmconfig.DefaultCPUs),
		Ports: m.Exposed, StopTimeout: cmp.Or(m.StopTimeout, plan.DefaultStopTimeout),
	}
	for _, v := range res.Volumes {
		vm.Volumes = append(vm.Volumes, kubevirt.Volume{Image: v.Pinned, Size: v.Size})
	}
	if file == "-" {
		return kubevirt.Write(w, vm)
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".tmp-")
	if err != nil {
		return fmt.Errorf("--kubevirt: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = kubevirt.Write(tmp, vm)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), file)
	}
	if err != nil {
		return fmt.Errorf("--kubevirt %s: %w", file, err)
	}
	return nil
}

// repoOf is REGISTRY/REPO of REGISTRY/REPO@DIGEST.
func repoOf(pinned string) string {
	repo, _, _ := strings.Cut(pinned, "@")
	return repo
}
