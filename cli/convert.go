package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/kernel"
)

// convertArgs are convert's flags as given, before they are checked.
type convertArgs struct {
	o               convert.Options
	fs              *flag.FlagSet
	env, binfmt     listFlag
	publish         listFlag
	volumes, disks  listFlag
	dataSize        string
	entrypoint, cmd string
	quiet, json     bool
}

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	a := &convertArgs{fs: newFlagSet("convert", stderr)}
	fs := a.fs
	registryFlags(fs, &a.o.Platform, &a.o.Creds, &a.o.InsecureTLS)
	fs.StringVar(&a.o.Kernel, "kernel", "", "kernel: image file, linux-image .deb, directory, debian:SUITE[=VERSION], or a kernel image oci:/oci-archive:/docker-archive:/docker://REF (LinuxKit or distro layout) (default: one the image carries, else Debian's, fetched once into $C2VM_CACHE)")
	fs.StringVar(&a.o.KernelMirror, "kernel-mirror", os.Getenv("C2VM_DEBIAN_MIRROR"), "Debian archive the default kernel comes from (default: $C2VM_DEBIAN_MIRROR, else "+kernel.DefaultMirror+")")
	fs.StringVar(&a.o.KernelKeyring, "kernel-keyring", "", "OpenPGP keyring the Debian archive's InRelease is checked against (default: Debian's archive keys shipped with c2vm)")
	fs.StringVar(&a.o.RootfsFormat, "rootfs", "", "root filesystem format: squashfs (default) or ext4")
	fs.StringVar(&a.o.Output, "output", "", "output directory (default: ./<image name>.vm)")
	fs.StringVar(&a.o.Output, "o", "", "shorthand for --output")
	fs.StringVar(&a.entrypoint, "entrypoint", "", "override the image's entrypoint (a JSON array or a single path; \"\" clears it)")
	fs.StringVar(&a.cmd, "cmd", "", "override the image's cmd (a JSON array or a shell-split string)")
	fs.Var(&a.env, "env", "K=V to add to the container environment (repeatable)")
	fs.StringVar(&a.o.Overrides.User, "user", "", "user[:group] to run as (name or id)")
	fs.StringVar(&a.o.Overrides.Workdir, "workdir", "", "working directory of the container process")
	fs.StringVar(&a.o.Overrides.Hostname, "hostname", "", "hostname of the VM")
	fs.StringVar(&a.o.Init, "init", "", "guest init binary to use instead of the embedded one")
	fs.StringVar(&a.o.VMArch, "vm-arch", "", "architecture of the VM (default: the image's); differing arches use binfmt_misc")
	fs.StringVar(&a.o.BinfmtInterpreter, "binfmt-interpreter", "", "static qemu-user binary (for the VM's arch) to run a foreign image")
	fs.Var(&a.binfmt, "binfmt", "also register binfmt_misc entries for these arches (comma-separated, repeatable)")
	fs.IntVar(&a.o.Memory, "memory", 0, "VM memory in MiB for the generated configs (default 512)")
	fs.IntVar(&a.o.CPUs, "cpus", 0, "VM CPUs for the generated configs (default 1)")
	fs.DurationVar(&a.o.StopTimeout, "stop-timeout", 0, "how long the VM gives the container to stop on its power button before SIGKILL (default 10s)")
	fs.Var(&a.publish, "publish", publishUsage+"; baked into qemu.sh and libvirt.xml")
	fs.BoolVar(&a.o.NoPublish, "no-publish", false, "do not publish the image's EXPOSEd ports (by default each on the same host port of 127.0.0.1)")
	fs.Var(&a.volumes, "volume", "also give the VM a data disk mounted at this path, like an image VOLUME (repeatable)")
	fs.StringVar(&a.dataSize, "data-size", "", "size of each new data disk: bytes or 512M, 2G... (default 1G)")
	fs.Var(&a.disks, "data-disk", "reuse this data disk (e.g. an earlier output's data-0.img), copied, for the next volume in sorted order (repeatable)")
	fs.BoolVar(&a.o.Verity, "verity", false, "write rootfs.verity, a dm-verity hash tree the VM checks its root disk against (root hash in manifest.json)")
	fs.StringVar(&a.o.Disk, "disk", "", "also write one bootable GPT disk image: raw (disk.img) or qcow2 (disk.qcow2), booted by UEFI firmware")
	fs.StringVar(&a.o.EFIStub, "efi-stub", "", "systemd EFI stub the disk's kernel image is built on (default: Debian's systemd-boot-efi one)")
	fs.BoolVar(&a.o.NoKernel, "no-kernel", false, "write only rootfs.img, config.json and manifest.json")
	fs.BoolVar(&a.quiet, "q", false, "no progress lines")
	fs.BoolVar(&a.json, "json", false, "print one JSON document on stdout when done: every artifact, the image, the kernel, c2vm's version ({\"error\": ...} on failure)")
	img, err := parseOneImage(fs, args, "convert")
	if err == nil {
		a.o.Image = img
		err = a.run(ctx, stdout, stderr)
	}
	if a.json || hasJSONFlag(args) {
		return jsonErrors(stdout, err)
	}
	return err
}

// run checks the flags, converts, and prints the --json result.
func (a *convertArgs) run(ctx context.Context, stdout, stderr io.Writer) error {
	o, err := a.options()
	if err != nil {
		return err
	}
	if !a.quiet {
		o.Progress, o.Meter = stderr, terminalMeter(stderr)
	}
	if convert.IsMulti(o.Platform) {
		return runMulti(ctx, o, a.json, stdout)
	}
	r, err := convert.Convert(ctx, o)
	if err != nil || !a.json {
		return err
	}
	res, err := newConvertResult(r)
	if err != nil {
		return err
	}
	return writeJSON(stdout, res)
}

// options turns the flags into convert's options.
func (a *convertArgs) options() (convert.Options, error) {
	o := a.o
	var err error
	if isSet(a.fs, "entrypoint") {
		o.Overrides.EntrypointSet = true
		if o.Overrides.Entrypoint, err = parseCommand(a.entrypoint, false); err != nil {
			return o, usagef("--entrypoint: %v", err)
		}
	}
	if isSet(a.fs, "cmd") {
		o.Overrides.CmdSet = true
		if o.Overrides.Cmd, err = parseCommand(a.cmd, true); err != nil {
			return o, usagef("--cmd: %v", err)
		}
	}
	o.Overrides.Env = a.env
	if o.Publish, err = parseForwards(a.publish); err != nil {
		return o, err
	}
	o.Volumes, o.DataDisks = a.volumes, a.disks
	if err := checkDisk(o); err != nil {
		return o, err
	}
	if a.dataSize != "" {
		if o.DataSize, err = convert.ParseSize(a.dataSize); err != nil {
			return o, usagef("--data-size: %v", err)
		}
	}
	for _, b := range a.binfmt {
		o.Binfmt = append(o.Binfmt, strings.Split(b, ",")...)
	}
	if o.Epoch, err = sourceDateEpoch(); err != nil {
		return o, err
	}
	o.Version = Version
	return o, nil
}

// parseCommand reads a command given as a JSON array (["sh","-c","x"]) or,
// for convenience, as words split on white space. An empty string is an
// empty command (which clears an entrypoint, as Docker's --entrypoint "").
func parseCommand(s string, split bool) ([]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if strings.HasPrefix(s, "[") {
		return parseJSONArray(s)
	}
	if !split {
		return []string{s}, nil
	}
	return strings.Fields(s), nil
}

// sourceDateEpoch is the one clock: SOURCE_DATE_EPOCH when set
// (https://reproducible-builds.org/specs/source-date-epoch/), else the Unix
// epoch.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, usagef("SOURCE_DATE_EPOCH=%q is not a non-negative integer", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

// checkDisk refuses --disk and --efi-stub combinations that cannot work.
func checkDisk(o convert.Options) error {
	switch {
	case o.Disk != "" && o.Disk != "raw" && o.Disk != "qcow2":
		return usagef("--disk %q: want raw or qcow2", o.Disk)
	case o.Disk != "" && o.NoKernel:
		return usagef("--disk needs a kernel: drop --no-kernel")
	case o.EFIStub != "" && o.Disk == "":
		return usagef("--efi-stub is only used with --disk")
	}
	// Before the conversion's work, not after it.
	if o.EFIStub != "" {
		if _, err := os.Stat(o.EFIStub); err != nil {
			return fmt.Errorf("--efi-stub: %w", err)
		}
	}
	return nil
}
