// Package convert wires c2vm's pipeline stages together:
//
//	image → rootfs (flatten, write) → bootcfg (spec, plan) → kernel (modules)
//	      → initramfs → vmconfig → output directory + manifest.json
//
// Every artifact is written into a temporary directory beside the target,
// which is renamed into place only when complete. The directory's
// contract (names, manifest.json, reading it back) is package vmdir's;
// what convert writes beside the root filesystem, kernel and initramfs
// is a table of outputs (outputs.go).
//
// Library callers pass values, not the CLI's strings:
//
//	r, err := convert.Convert(ctx, convert.Options{Image: "alpine.tar", Output: "alpine.vm",
//		Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"},
//		Kernel:   convert.One("debian:bookworm"), // or ByArch{"arm64": "k.deb"}
//		Disk:     disk.QCOW2})
//
// Several platforms: ConvertAll(ctx, o, []ocispec.Platform{...}), nil for
// every one the image has, with Kernel, Init and EFIStub per arch.
package convert

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/disk"
	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/vmdir"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// Options are convert's inputs; the zero value of each field is its default.
type Options struct {
	Image string // image reference (a path, transport:path[:ref] or docker://REF)
	// Platform picks the image's platform; nil = its only one, else the
	// host's. ConvertAll takes its platforms as an argument instead.
	Platform    *ocispec.Platform
	Creds       string // USER:PASSWORD for a docker:// registry; "" = as skopeo and Docker find them
	InsecureTLS bool   // plain HTTP or unverified TLS for a docker:// registry (--tls-verify=false)
	// StallTimeout fails a docker:// transfer making no progress for that
	// long; 0 = image.DefaultStallTimeout.
	StallTimeout time.Duration
	// Kernel is, per VM arch, a kernel file, .deb, directory,
	// debian:SUITE[=VERSION] or kernel image (oci:..., docker://...);
	// none = one the image carries, else Debian's.
	Kernel   ByArch
	NoKernel bool // write only rootfs.img, config.json and manifest.json
	// Verity writes rootfs.verity, a dm-verity hash tree over rootfs.img,
	// which the init then checks the root against (--verity).
	Verity       bool
	RootfsFormat string // "squashfs" (default), "erofs" or "ext4"
	Output       string // output directory; "" = <image name>.vm
	Overrides    bootcfg.Overrides
	Init         ByArch      // guest init binary per VM arch; none = the embedded one
	Disk         disk.Format // also write a UEFI-bootable disk image of this format; "" = none
	// EFIStub is, per VM arch, the systemd EFI stub for the disk's UKI: a
	// file or debian:SUITE[=VERSION]; none = the installed one, else
	// Debian's.
	EFIStub ByArch

	// KernelMirror is the Debian archive for the default kernel; "" =
	// kernel.DefaultMirror. KernelKeyring replaces the Debian archive keys
	// its InRelease is checked against.
	KernelMirror, KernelKeyring string

	VMArch            string   // GOARCH of the VM; "" = the image's
	BinfmtInterpreter string   // static qemu-user binary for foreign images
	Binfmt            []string // extra arches to register with binfmt_misc

	// Publish are forwards baked into qemu.sh and libvirt.xml (--publish);
	// every EXPOSEd port is also published on the same host port of
	// 127.0.0.1 unless NoPublish (see bootcfg.Forwards).
	Publish   []plan.Forward
	NoPublish bool

	// Volumes adds data disks beyond the image's VOLUMEs (--volume).
	Volumes []string
	// DataSize is each new data disk's size in bytes; 0 = 1 GiB.
	DataSize int64
	// DataDisks are existing data disks, copied instead of seeding the
	// first len(DataDisks) volumes in sorted order (--data-disk).
	DataDisks []string

	Memory, CPUs int // for the hypervisor configs
	// StopTimeout is how long the VM's init gives the container to stop
	// on the power button before SIGKILL; 0 = Docker's 10 s.
	StopTimeout time.Duration
	Epoch       time.Time // the one clock for every timestamp c2vm creates
	Version     string    // c2vm's version for manifest.json
	// SignKey signs the provenance (--sign-key): provenance.dsse.json, a
	// DSSE envelope, instead of the plain provenance.intoto.json.
	SignKey crypto.Signer
	// SecureBoot signs the disk's UKI (--secure-boot-key,
	// --secure-boot-cert); nil leaves it unsigned.
	SecureBoot *SecureBoot
	// Parameters are the conversion's flags as given, the provenance's
	// external parameters (the CLI leaves out --creds and the output).
	Parameters map[string]any
	// Jobs is how many platforms ConvertAll converts at once; 0 =
	// GOMAXPROCS (jobs).
	Jobs     int
	Progress io.Writer // one line per stage; nil = silent
	Meter    Meter     // live display of layer downloads and reads (a terminal's); nil = none

	// label prefixes each progress line: the platform, when ConvertAll
	// converts several.
	label string
}

// Result describes a finished conversion.
type Result struct {
	Dir      string
	Manifest vmdir.Manifest
}

// Convert runs the pipeline. On error the output directory is left as it
// was (absent, or the previous output).
func Convert(ctx context.Context, o Options) (*Result, error) {
	if err := checkOptions(&o); err != nil {
		return nil, err
	}
	if o.Output == "" {
		o.Output = defaultOutput(o.Image)
	}
	img, err := image.OpenContext(ctx, o.Image, image.Options{Platform: formatPlatform(o.Platform), Creds: o.Creds, InsecureTLS: o.InsecureTLS, StallTimeout: o.StallTimeout, Meter: o.Meter, SpoolDir: filepath.Dir(o.Output)})
	if err != nil {
		return nil, err
	}
	defer img.Close()
	o.progress("image: %s %s, %d layers", platformString(img), short(img.ManifestDigest.String()), len(img.Layers))

	var c *conversion
	dir, err := build(o.Output, func(st *stage) error {
		c = &conversion{o: o, img: img, st: st}
		return c.run(ctx)
	})
	if err != nil {
		return nil, err
	}
	o.progress("done: %s", dir)
	return &Result{Dir: dir, Manifest: c.manifest}, nil
}

// checkOptions refuses, before any work, a root filesystem format or an
// output option convert does not know: a library caller's too.
func checkOptions(o *Options) error {
	if _, _, err := (&conversion{o: *o}).rootfsFormat(); err != nil {
		return err
	}
	return checkOutputs(o)
}

// conversion holds the state passed from stage to stage.
type conversion struct {
	o        Options
	img      *image.Image
	st       *stage
	tree     *rootfs.Tree
	manifest vmdir.Manifest
	// kernelDebian is set when the kernel came from a Debian mirror.
	kernelDebian *kernel.DebianSource
	// kernelTree and kernelImage are set when --kernel is an image.
	kernelTree  *rootfs.Tree
	kernelImage *vmdir.ImageInfo
	// kernelRef, initRef and stubRef are the VM arch's --kernel, --init
	// and --efi-stub (resolveSources).
	kernelRef, initRef, stubRef string
	// spec and volumes are the container's, for the boot plan.
	spec    *specs.Spec
	volumes []bootcfg.Volume
	// digests are the artifacts' digests already read (digest).
	digests map[string]vmdir.Artifact
	// parts are the kernel, init and EFI stub used (SBOM, provenance).
	parts []part
}

// run writes the output directory's artifacts, one step after the other.
func (c *conversion) run(ctx context.Context) error {
	defer c.close()
	c.startManifest()
	for _, step := range []func(context.Context) error{
		c.resolveSources,
		c.flatten,
		c.writeRootfs,
		c.writeOutputs(afterRootfs), // rootfs.verity
		c.writeSpec,
		c.writeForwards,
		c.writeVolumes,
		c.writeBoot,
		c.writeOutputs(afterBoot),      // hypervisor configs, disk image
		c.writeOutputs(beforeManifest), // sbom.spdx.json
		c.writeManifest,
		c.writeOutputs(afterManifest), // the provenance
	} {
		if err := step(ctx); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// resolveSources picks the VM arch's kernel, init and EFI stub from the
// options (none without a kernel).
func (c *conversion) resolveSources(context.Context) error {
	if c.o.NoKernel {
		return nil
	}
	vm, err := c.vmArch()
	if err != nil {
		return err
	}
	if c.kernelRef, err = c.o.Kernel.For("--kernel", vm.GOARCH); err != nil {
		return err
	}
	if c.initRef, err = c.o.Init.For("--init", vm.GOARCH); err != nil {
		return err
	}
	c.stubRef, err = c.o.EFIStub.For("--efi-stub", vm.GOARCH)
	return err
}

// flatten flattens the image's layers into c.tree.
func (c *conversion) flatten(ctx context.Context) error {
	layers := make([]rootfs.Layer, len(c.img.Layers))
	for i := range c.img.Layers {
		layers[i] = c.img.Layers[i]
	}
	if c.o.Meter != nil {
		meteredLayers(layers, c.o.Meter)
	}
	tree, err := rootfs.Flatten(ctx, layers, rootfs.FlattenOptions{SpoolDir: c.st.dir, ModTime: c.o.Epoch})
	if err != nil {
		return err
	}
	c.tree = tree
	return nil
}

// close closes the trees the steps opened.
func (c *conversion) close() {
	for _, t := range []*rootfs.Tree{c.tree, c.kernelTree} {
		if t != nil {
			t.Close()
		}
	}
}

func (o Options) progress(format string, a ...any) {
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "c2vm: %s%s\n", o.label, fmt.Sprintf(format, a...))
	}
}

// defaultOutput names the output after the image: ./alpine.tar → alpine.vm,
// docker://example.com/app@sha256:… → app.vm.
func defaultOutput(ref string) string {
	p, _ := image.HasTransport(ref)
	if strings.HasPrefix(ref, string(image.TransportDocker)+"://") || strings.HasPrefix(ref, string(image.TransportDaemon)+":") {
		p, _, _ = strings.Cut(p, "@") // a registry or engine reference's digest
	}
	base := filepath.Base(strings.TrimRight(p, "/"))
	if i := strings.IndexByte(base, ':'); i > 0 {
		base = base[:i]
	}
	for _, ext := range []string{".tar.gz", ".tar", ".oci"} {
		base = strings.TrimSuffix(base, ext)
	}
	if base == "" || base == "." || base == "/" {
		base = "image"
	}
	return base + ".vm"
}

// formatPlatform is p as image.Options takes it, "" for nil.
func formatPlatform(p *ocispec.Platform) string {
	if p == nil {
		return ""
	}
	return platforms.Format(*p)
}

func platformString(img *image.Image) string {
	p := img.Platform.OS + "/" + img.Platform.Architecture
	if img.Platform.Variant != "" {
		p += "/" + img.Platform.Variant
	}
	return p
}

func short(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}
