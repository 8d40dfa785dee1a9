package cli

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/kernel"
)

func runConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("convert", stderr)
	var (
		o               convert.Options
		env, binfmt     listFlag
		publish         listFlag
		volumes, disks  listFlag
		dataSize        string
		entrypoint, cmd string
		quiet           bool
	)
	fs.StringVar(&o.Platform, "platform", "", "image platform os/arch[/variant] (default: the image's only one, else the host's)")
	fs.StringVar(&o.Kernel, "kernel", "", "kernel: image file, linux-image .deb, directory, debian:SUITE[=VERSION], or a kernel image oci:/oci-archive:/docker-archive:REF (LinuxKit or distro layout) (default: one the image carries, else Debian's, fetched once into $C2VM_CACHE)")
	fs.StringVar(&o.KernelMirror, "kernel-mirror", os.Getenv("C2VM_DEBIAN_MIRROR"), "Debian archive the default kernel comes from (default: $C2VM_DEBIAN_MIRROR, else "+kernel.DefaultMirror+")")
	fs.StringVar(&o.KernelKeyring, "kernel-keyring", "", "OpenPGP keyring the Debian archive's InRelease is checked against (default: Debian's archive keys shipped with c2vm)")
	fs.StringVar(&o.RootfsFormat, "rootfs", "", "root filesystem format: squashfs (default) or ext4")
	fs.StringVar(&o.Output, "output", "", "output directory (default: ./<image name>.vm)")
	fs.StringVar(&o.Output, "o", "", "shorthand for --output")
	fs.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint (a JSON array or a single path; \"\" clears it)")
	fs.StringVar(&cmd, "cmd", "", "override the image's cmd (a JSON array or a shell-split string)")
	fs.Var(&env, "env", "K=V to add to the container environment (repeatable)")
	fs.StringVar(&o.Overrides.User, "user", "", "user[:group] to run as (name or id)")
	fs.StringVar(&o.Overrides.Workdir, "workdir", "", "working directory of the container process")
	fs.StringVar(&o.Overrides.Hostname, "hostname", "", "hostname of the VM")
	fs.StringVar(&o.Init, "init", "", "guest init binary to use instead of the embedded one")
	fs.StringVar(&o.VMArch, "vm-arch", "", "architecture of the VM (default: the image's); differing arches use binfmt_misc")
	fs.StringVar(&o.BinfmtInterpreter, "binfmt-interpreter", "", "static qemu-user binary (for the VM's arch) to run a foreign image")
	fs.Var(&binfmt, "binfmt", "also register binfmt_misc entries for these arches (comma-separated, repeatable)")
	fs.IntVar(&o.Memory, "memory", 0, "VM memory in MiB for the generated configs (default 512)")
	fs.IntVar(&o.CPUs, "cpus", 0, "VM CPUs for the generated configs (default 1)")
	fs.DurationVar(&o.StopTimeout, "stop-timeout", 0, "how long the VM gives the container to stop on its power button before SIGKILL (default 10s)")
	fs.Var(&publish, "publish", publishUsage+"; baked into qemu.sh and libvirt.xml")
	fs.BoolVar(&o.NoPublish, "no-publish", false, "do not publish the image's EXPOSEd ports (by default each on the same host port of 127.0.0.1)")
	fs.Var(&volumes, "volume", "also give the VM a data disk mounted at this path, like an image VOLUME (repeatable)")
	fs.StringVar(&dataSize, "data-size", "", "size of each new data disk: bytes or 512M, 2G... (default 1G)")
	fs.Var(&disks, "data-disk", "reuse this data disk (e.g. an earlier output's data-0.img), copied, for the next volume in sorted order (repeatable)")
	fs.BoolVar(&o.Verity, "verity", false, "write rootfs.verity, a dm-verity hash tree the VM checks its root disk against (root hash in manifest.json)")
	fs.BoolVar(&o.NoKernel, "no-kernel", false, "write only rootfs.img, config.json and manifest.json")
	fs.BoolVar(&quiet, "q", false, "no progress lines")
	pos, _, err := parseInterspersed(fs, args)
	if err != nil {
		return usagef("%v", err)
	}
	if len(pos) != 1 {
		return usagef("convert takes exactly one IMAGE, got %d", len(pos))
	}
	o.Image = pos[0]
	if isSet(fs, "entrypoint") {
		o.Overrides.EntrypointSet = true
		if o.Overrides.Entrypoint, err = parseCommand(entrypoint, false); err != nil {
			return usagef("--entrypoint: %v", err)
		}
	}
	if isSet(fs, "cmd") {
		o.Overrides.CmdSet = true
		if o.Overrides.Cmd, err = parseCommand(cmd, true); err != nil {
			return usagef("--cmd: %v", err)
		}
	}
	o.Overrides.Env = env
	if o.Publish, err = parseForwards(publish); err != nil {
		return err
	}
	o.Volumes, o.DataDisks = volumes, disks
	if dataSize != "" {
		if o.DataSize, err = convert.ParseSize(dataSize); err != nil {
			return usagef("--data-size: %v", err)
		}
	}
	for _, b := range binfmt {
		o.Binfmt = append(o.Binfmt, strings.Split(b, ",")...)
	}
	if o.Epoch, err = sourceDateEpoch(); err != nil {
		return err
	}
	if !quiet {
		o.Progress = stderr
	}
	o.Version = Version
	_, err = convert.Convert(ctx, o)
	return err
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
