package cli

import (
	"context"
	"crypto"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/platforms"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/disk"
	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/provenance"
)

// convertArgs are convert's flags as given, before they are checked.
type convertArgs struct {
	o               convert.Options
	fs              *pflag.FlagSet
	env, binfmt     []string
	publish         []string
	volumes, disks  []string
	dataSize        string
	entrypoint, cmd string
	quiet, json     bool
	signKey         string
	sbKey, sbCert   string
	// platform, kernel, init, efiStub and disk are parsed once into
	// convert's typed options (options).
	platform, kernel, init, efiStub, disk string
}

func (a *app) convertCmd() *cobra.Command {
	c := &convertArgs{}
	cmd := &cobra.Command{
		Use:   "convert [flags] IMAGE",
		Short: "convert a container image into a bootable VM directory",
		Args:  exactly(1, "IMAGE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c.o.Image = args[0]
			return c.run(cmd.Context(), a)
		},
	}
	c.fs = cmd.Flags()
	c.flags(c.fs)
	completeRegistryFlags(cmd, "all")
	complete(cmd, "rootfs", convert.Formats()...)
	complete(cmd, "disk", "raw", "qcow2", "vmdk", "vhdx")
	complete(cmd, "vm-arch", arch.VMNames()...)
	complete(cmd, "binfmt", arch.Names()...)
	cmd.MarkFlagDirname("output")
	return cmd
}

// flags defines convert's flags on fs. Lists are StringArrays, one value
// per flag, as --env A=1,2 must stay one variable.
func (c *convertArgs) flags(fs *pflag.FlagSet) {
	registryFlags(fs, &c.platform, &c.o.Creds, &c.o.InsecureTLS, &c.o.StallTimeout)
	fs.Lookup("platform").Usage = "image platform os/arch[/variant]; all or a comma list converts each into DIR/<os>-<arch>[-<variant>]/ (default: the image's only one, else the host's)"
	fs.IntVarP(&c.o.Jobs, "jobs", "j", 0, "with several platforms, convert up to N at once (default: the number of CPUs)")
	fs.StringVar(&c.kernel, "kernel", "", "kernel: image file, linux-image .deb, directory, debian:SUITE[=VERSION], or a kernel image oci:/oci-archive:/docker-archive:/docker://REF (LinuxKit or distro layout); with several platforms ARCH=PATH,... (default: one the image carries, else Debian's, fetched once into $C2VM_CACHE)")
	fs.StringVar(&c.o.KernelMirror, "kernel-mirror", os.Getenv("C2VM_DEBIAN_MIRROR"), "Debian archive the default kernel comes from (default: $C2VM_DEBIAN_MIRROR, else "+kernel.DefaultMirror+")")
	fs.StringVar(&c.o.KernelKeyring, "kernel-keyring", "", "OpenPGP keyring the Debian archive's InRelease is checked against (default: Debian's archive keys shipped with c2vm)")
	fs.StringVar(&c.o.RootfsFormat, "rootfs", "", "root filesystem format: "+strings.Join(convert.Formats(), ", ")+" (default "+convert.DefaultRootfs+")")
	fs.StringVarP(&c.o.Output, "output", "o", "", "output directory (default: ./<image name>.vm)")
	fs.StringVar(&c.entrypoint, "entrypoint", "", "override the image's entrypoint (a JSON array or a single path; \"\" clears it)")
	fs.StringVar(&c.cmd, "cmd", "", "override the image's cmd (a JSON array or a shell-split string)")
	fs.StringArrayVarP(&c.env, "env", "e", nil, "K=V to add to the container environment (repeatable)")
	fs.StringVar(&c.o.Overrides.User, "user", "", "user[:group] to run as (name or id)")
	fs.StringVar(&c.o.Overrides.Workdir, "workdir", "", "working directory of the container process")
	fs.StringVar(&c.o.Overrides.Hostname, "hostname", "", "hostname of the VM")
	fs.StringVar(&c.init, "init", "", "guest init binary to use instead of the embedded one; with several platforms ARCH=PATH,...")
	fs.StringVar(&c.o.VMArch, "vm-arch", "", "architecture of the VM (default: the image's); differing arches use binfmt_misc")
	fs.StringVar(&c.o.BinfmtInterpreter, "binfmt-interpreter", "", "static qemu-user binary (for the VM's arch) to run a foreign image")
	fs.StringArrayVar(&c.binfmt, "binfmt", nil, "also register binfmt_misc entries for these arches (comma-separated, repeatable)")
	fs.IntVar(&c.o.Memory, "memory", 0, "VM memory in MiB for the generated configs (default 512)")
	fs.IntVar(&c.o.CPUs, "cpus", 0, "VM CPUs for the generated configs (default 1)")
	fs.DurationVar(&c.o.StopTimeout, "stop-timeout", 0, "how long the VM gives the container to stop on its power button before SIGKILL (default 10s)")
	fs.StringArrayVarP(&c.publish, "publish", "p", nil, publishUsage+"; baked into qemu.sh and libvirt.xml")
	fs.BoolVar(&c.o.NoPublish, "no-publish", false, "do not publish the image's EXPOSEd ports (by default each on the same host port of 127.0.0.1)")
	fs.StringArrayVar(&c.volumes, "volume", nil, "also give the VM a data disk mounted at this path, like an image VOLUME (repeatable)")
	fs.StringVar(&c.dataSize, "data-size", "", "size of each new data disk: bytes or 512M, 2G... (default 1G)")
	fs.StringArrayVar(&c.disks, "data-disk", nil, "reuse this data disk (e.g. an earlier output's data-0.img), copied, for the next volume in sorted order (repeatable)")
	fs.BoolVar(&c.o.Verity, "verity", false, "write rootfs.verity, a dm-verity hash tree the VM checks its root disk against (root hash in manifest.json)")
	fs.StringVar(&c.disk, "disk", "", "also write one bootable GPT disk image, booted by UEFI firmware: raw (disk.img), qcow2, vmdk or vhdx (disk.FORMAT)")
	fs.StringVar(&c.efiStub, "efi-stub", "", "systemd EFI stub the disk's kernel image is built on: PATH or debian:SUITE[=VERSION] (default: the installed systemd-boot-efi one of the VM's arch, else Debian's, fetched); with several platforms ARCH=PATH,...")
	fs.StringVar(&c.sbKey, "secure-boot-key", "", "sign the disk's UKI for UEFI Secure Boot with this RSA key (PEM, unencrypted); with --secure-boot-cert")
	fs.StringVar(&c.sbCert, "secure-boot-cert", "", "the certificate (PEM) of --secure-boot-key, as enrolled in the firmware's db")
	fs.StringVar(&c.signKey, "sign-key", "", "sign the provenance with this PKCS#8 PEM key (ed25519 or ECDSA P-256): provenance.dsse.json, a DSSE envelope, instead of provenance.intoto.json")
	fs.BoolVar(&c.o.NoKernel, "no-kernel", false, "write only rootfs.img, config.json and manifest.json")
	fs.BoolVarP(&c.quiet, "quiet", "q", false, "no progress lines (nor bars)")
	fs.BoolVar(&c.json, "json", false, "print one JSON document on stdout when done: every artifact, the image, the kernel, c2vm's version ({\"error\": ...} on failure)")
}

// run checks the flags, converts, and prints the --json result.
func (c *convertArgs) run(ctx context.Context, a *app) error {
	o, err := c.options()
	if err != nil {
		return err
	}
	if !c.quiet {
		o.Progress, o.Meter = a.stderr, terminalMeter(a.stderr)
	}
	if convert.IsMulti(c.platform) {
		return runMulti(ctx, o, c.platform, c.json, a.stdout)
	}
	r, err := a.convert(ctx, o)
	if err != nil || !c.json {
		return err
	}
	res, err := newConvertResult(r)
	if err != nil {
		return err
	}
	return writeJSON(a.stdout, res)
}

// options turns the flags into convert's options.
func (c *convertArgs) options() (convert.Options, error) {
	o := c.o
	var err error
	if c.fs.Changed("entrypoint") {
		o.Overrides.EntrypointSet = true
		if o.Overrides.Entrypoint, err = parseCommand(c.entrypoint, false); err != nil {
			return o, usagef("--entrypoint: %v", err)
		}
	}
	if c.fs.Changed("cmd") {
		o.Overrides.CmdSet = true
		if o.Overrides.Cmd, err = parseCommand(c.cmd, true); err != nil {
			return o, usagef("--cmd: %v", err)
		}
	}
	o.Overrides.Env = c.env
	if o.Publish, err = parseForwards(c.publish); err != nil {
		return o, err
	}
	o.Volumes, o.DataDisks = c.volumes, c.disks
	if err := c.typed(&o); err != nil {
		return o, err
	}
	if c.dataSize != "" {
		if o.DataSize, err = convert.ParseSize(c.dataSize); err != nil {
			return o, usagef("--data-size: %v", err)
		}
	}
	for _, b := range c.binfmt {
		o.Binfmt = append(o.Binfmt, strings.Split(b, ",")...)
	}
	if o.Epoch, err = sourceDateEpoch(); err != nil {
		return o, err
	}
	o.Version = Version
	if c.signKey != "" {
		if o.SignKey, err = readSignKey(c.signKey); err != nil {
			return o, err
		}
	}
	if o.SecureBoot, err = c.secureBoot(o); err != nil {
		return o, err
	}
	o.Parameters = c.parameters()
	return o, nil
}

// secureBoot reads --secure-boot-key and --secure-boot-cert, which go
// together and with --disk.
func (c *convertArgs) secureBoot(o convert.Options) (*convert.SecureBoot, error) {
	switch {
	case c.sbKey == "" && c.sbCert == "":
		return nil, nil
	case c.sbKey == "" || c.sbCert == "":
		return nil, usagef("--secure-boot-key and --secure-boot-cert go together")
	case o.Disk == "":
		return nil, usagef("--secure-boot-key signs the disk's UKI: add --disk")
	}
	key, err := os.ReadFile(c.sbKey)
	if err != nil {
		return nil, fmt.Errorf("--secure-boot-key: %w", err)
	}
	cert, err := os.ReadFile(c.sbCert)
	if err != nil {
		return nil, fmt.Errorf("--secure-boot-cert: %w", err)
	}
	sb, err := convert.ParseSecureBoot(key, cert)
	if err != nil {
		return nil, fmt.Errorf("--secure-boot-key %s, --secure-boot-cert %s: %w", c.sbKey, c.sbCert, err)
	}
	return sb, nil
}

// readSignKey reads --sign-key before any work.
func readSignKey(p string) (crypto.Signer, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w", err)
	}
	k, err := provenance.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("--sign-key %s: %w", p, err)
	}
	return k, nil
}

// notParameters are flags the provenance leaves out: secrets, where the
// output goes, how progress is shown, how many platforms convert at once
// (the bytes are the same).
var notParameters = map[string]bool{"creds": true, "output": true, "quiet": true, "json": true, "sign-key": true, "secure-boot-key": true, "jobs": true}

// parameters are the flags given, by name, for the provenance: the
// image, then each flag set on the command line with its value as typed
// (lists as lists).
func (c *convertArgs) parameters() map[string]any {
	p := map[string]any{"image": c.o.Image}
	c.fs.Visit(func(f *pflag.Flag) {
		if notParameters[f.Name] {
			return
		}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			p[f.Name] = sv.GetSlice()
			return
		}
		p[f.Name] = f.Value.String()
	})
	return p
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

// typed parses the flags that convert takes as values: the platform
// (several: runMulti), the disk format, the kernel, init and EFI stub per
// arch (ARCH=PATH,...).
func (c *convertArgs) typed(o *convert.Options) error {
	if c.platform != "" && !convert.IsMulti(c.platform) {
		p, err := platforms.Parse(c.platform)
		if err != nil {
			return usagef("--platform %q: %v", c.platform, err)
		}
		o.Platform = &p
	}
	if c.disk != "" {
		f, err := disk.ParseFormat(c.disk)
		if err != nil {
			return usagef("--disk: %v", err)
		}
		o.Disk = f
	}
	o.Kernel, o.Init, o.EFIStub = convert.ParseByArch(c.kernel), convert.ParseByArch(c.init), convert.ParseByArch(c.efiStub)
	switch {
	case c.disk != "" && o.NoKernel:
		return usagef("--disk needs a kernel: drop --no-kernel")
	case c.efiStub != "" && c.disk == "":
		return usagef("--efi-stub is only used with --disk")
	case o.Jobs < 0:
		return usagef("--jobs %d: want 1 or more (0: the number of CPUs)", o.Jobs)
	}
	return nil
}
