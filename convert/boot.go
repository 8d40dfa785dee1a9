package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/c2vm/c2vm/arch"
	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/initramfs"
	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/rootfs"
	"github.com/c2vm/c2vm/vmconfig"
	"github.com/c2vm/c2vm/vmdir"
)

// writeSpec writes config.json, the OCI runtime spec of the container
// the VM runs (c.spec).
func (c *conversion) writeSpec(context.Context) error {
	spec, err := bootcfg.Spec(c.img.Config, c.tree.FS(), c.o.Overrides, c.annotations())
	if err != nil {
		return err
	}
	if err := vmdir.WriteJSON(c.st.path(vmdir.Spec), spec); err != nil {
		return err
	}
	c.o.progress("spec: %q as %d:%d in %s", spec.Process.Args, spec.Process.User.UID, spec.Process.User.GID, spec.Process.Cwd)
	if na := bootcfg.NotApplied(spec); len(na) > 0 {
		c.o.progress("spec: not applied in the VM: %s", strings.Join(na, "; "))
	}
	c.spec = spec
	return nil
}

// writeBoot writes, unless NoKernel, the kernel (and vmlinux), the boot
// plan (boot.json) and the initramfs carrying it with the init, the
// modules the plan needs and the emulators, and records the kernel in
// the manifest.
func (c *conversion) writeBoot(ctx context.Context) error {
	if c.o.NoKernel {
		return nil
	}
	vm, err := c.vmArch()
	if err != nil {
		return err
	}
	k, err := c.openKernel(ctx, vm)
	if err != nil {
		return err
	}
	defer k.Close()
	if err := k.CheckArch(vm.GOARCH); err != nil {
		return err
	}
	mods, p, interps, err := c.bootPlan(k, vm)
	if err != nil {
		return err
	}
	if err := vmdir.WriteJSON(c.st.path(vmdir.BootPlan), p); err != nil {
		return err
	}
	if err := c.writeInitramfs(k, mods, p, interps, vm); err != nil {
		return err
	}
	if err := c.writeKernel(k, vm); err != nil {
		return err
	}
	return c.recordKernel(k, mods, vm)
}

// bootPlan makes the boot plan for the kernel k, with the modules it
// needs from k and the emulators for foreign binaries.
func (c *conversion) bootPlan(k *kernel.Kernel, vm arch.Arch) ([]kernel.Module, *plan.Plan, []bootcfg.Interpreter, error) {
	po, interps, err := c.planOptions(vm)
	if err != nil {
		return nil, nil, nil, err
	}
	po.Exposed, po.Volumes, po.Verity = c.manifest.Exposed, c.volumes, c.verityStep()
	mods, err := k.ClosureOptional(bootcfg.Requirements(po), bootcfg.Optional())
	if err != nil {
		return nil, nil, nil, err
	}
	if w := k.ConfigWarning(bootcfg.Requirements(po)); w != "" {
		c.o.progress("warning: %s", w)
	}
	for _, m := range mods {
		po.Modules = append(po.Modules, m.Path)
	}
	p, err := bootcfg.Plan(c.spec, po)
	if err != nil {
		return nil, nil, nil, err
	}
	return mods, p, interps, nil
}

// recordKernel records the VM's arch and kernel in the manifest, and the
// kernel as a part of the VM (SBOM, provenance).
func (c *conversion) recordKernel(k *kernel.Kernel, mods []kernel.Module, vm arch.Arch) error {
	c.manifest.VMArch = vm.GOARCH
	c.manifest.Kernel = &vmdir.KernelInfo{Source: c.kernelSource(), Version: k.Version, Arch: k.Arch, Format: k.Format,
		Shares: shareFS(k), Debian: debianSource(c.kernelDebian), Image: c.kernelImage}
	for _, m := range mods {
		c.manifest.Kernel.Modules = append(c.manifest.Kernel.Modules, m.Name)
	}
	kp, err := c.kernelPart(k.Version, vm.Debian)
	if err != nil {
		return err
	}
	c.addPart(kp, nil)
	c.o.progress("kernel: %s %s (%s), %d modules", k.Arch, k.Version, k.Format, len(mods))
	for _, w := range k.XenWarnings() {
		c.o.progress("warning: xl.cfg: %s", w)
	}
	return nil
}

// planOptions gathers what the boot plan needs from the image: the
// emulators for foreign binaries and the image's own binfmt.d files.
func (c *conversion) planOptions(vm arch.Arch) (bootcfg.PlanOptions, []bootcfg.Interpreter, error) {
	eo := bootcfg.EmulationOptions{VM: vm, Static: c.o.BinfmtInterpreter}
	var err error
	if eo.Image, err = arch.Lookup(c.img.Platform.Architecture); err != nil {
		return bootcfg.PlanOptions{}, nil, fmt.Errorf("image platform: %w", err)
	}
	for _, name := range c.o.Binfmt {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		a, err := arch.Lookup(name)
		if err != nil {
			return bootcfg.PlanOptions{}, nil, fmt.Errorf("--binfmt: %w", err)
		}
		eo.Extra = append(eo.Extra, a)
	}
	binfmts, interps, err := bootcfg.Emulation(c.tree.FS(), eo)
	if err != nil {
		return bootcfg.PlanOptions{}, nil, err
	}
	binfmtD, err := bootcfg.BinfmtDFiles(c.tree.FS())
	if err != nil {
		return bootcfg.PlanOptions{}, nil, err
	}
	return bootcfg.PlanOptions{FSType: c.manifest.Rootfs, Binfmt: binfmts, BinfmtD: binfmtD,
		StopSignal: c.img.Config.Config.StopSignal, StopTimeout: c.stopTimeout()}, interps, nil
}

// stopTimeout is --stop-timeout in whole seconds (at least 1 when set),
// 0 for the default.
func (c *conversion) stopTimeout() int {
	if c.o.StopTimeout <= 0 {
		return 0
	}
	return max(1, int((c.o.StopTimeout+time.Second-1)/time.Second))
}

func (c *conversion) annotations() map[string]string {
	return map[string]string{
		"io.c2vm.image.manifest-digest": c.img.ManifestDigest.String(),
		"io.c2vm.image.config-digest":   c.img.ConfigDigest.String(),
	}
}

// kernelSource names where the kernel came from, for manifest.json:
// what --kernel named, "debian:SUITE=VERSION" for the default Debian
// kernel (the form that pins it), or "image".
func (c *conversion) kernelSource() string {
	switch {
	case c.kernelRef != "":
		return c.kernelRef
	case c.kernelDebian != nil:
		return "debian:" + c.kernelDebian.Suite + "=" + c.kernelDebian.Version
	}
	return "image"
}

func (c *conversion) openKernel(ctx context.Context, vm arch.Arch) (*kernel.Kernel, error) {
	if suite, version, ok := kernel.ParseDebianRef(c.kernelRef); ok {
		return c.debianKernel(ctx, vm, suite, version)
	}
	if isImageRef(c.kernelRef) {
		return c.imageKernel(ctx, vm)
	}
	if c.kernelRef != "" {
		k, err := kernel.OpenMetered(c.kernelRef, c.o.Meter)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", c.kernelRef, err)
		}
		return k, nil
	}
	k, err := kernel.FromFS(c.tree.FS())
	if errors.Is(err, kernel.ErrNoKernel) {
		// The image carries none: Debian's, as --kernel debian: would.
		return c.debianKernel(ctx, vm, "", "")
	}
	if err != nil {
		return nil, fmt.Errorf("kernel in the image: %w", err)
	}
	return k, nil
}

// isImageRef reports whether --kernel names a container image in a form
// convert reads (a plain path stays a kernel file, .deb or directory).
func isImageRef(ref string) bool {
	_, ok := image.HasTransport(ref)
	return ok
}

// imageKernel reads the kernel from a container image for the VM's
// platform: LinuxKit's layout (/kernel + /kernel.tar) or a distro's
// (/boot/vmlinuz-* with /lib/modules or /usr/lib/modules). The image's
// flattened tree stays open (c.kernelTree) while the kernel is read.
func (c *conversion) imageKernel(ctx context.Context, vm arch.Arch) (*kernel.Kernel, error) {
	// The same registry credentials as the image: one --creds, one login.
	img, err := image.OpenContext(ctx, c.kernelRef, image.Options{Platform: "linux/" + vm.GOARCH,
		Creds: c.o.Creds, InsecureTLS: c.o.InsecureTLS, StallTimeout: c.o.StallTimeout, Meter: c.o.Meter})
	if err != nil {
		return nil, fmt.Errorf("kernel image: %w", err)
	}
	defer img.Close()
	layers := make([]rootfs.Layer, len(img.Layers))
	for i := range img.Layers {
		layers[i] = img.Layers[i]
	}
	tree, err := rootfs.Flatten(ctx, layers, rootfs.FlattenOptions{SpoolDir: c.st.dir, ModTime: c.o.Epoch})
	if err != nil {
		return nil, fmt.Errorf("kernel image %s: %w", c.kernelRef, err)
	}
	c.kernelTree = tree
	c.kernelImage = &vmdir.ImageInfo{Ref: c.kernelRef, ManifestDigest: img.ManifestDigest.String(), ConfigDigest: img.ConfigDigest.String()}
	layout, open := "distro", kernel.FromFS
	if kernel.IsLinuxKit(tree.FS()) {
		layout, open = "linuxkit", kernel.FromLinuxKit
	}
	k, err := open(tree.FS())
	if err != nil {
		tree.Close()
		c.kernelTree = nil
		return nil, fmt.Errorf("kernel image %s (%s layout): %w", c.kernelRef, layout, err)
	}
	c.o.progress("kernel: from image %s %s (%s layout)", c.kernelRef, short(img.ManifestDigest.String()), layout)
	return k, nil
}

// debianKernel fetches (or finds in the cache) Debian's kernel for vm and
// records where it came from in the manifest.
func (c *conversion) debianKernel(ctx context.Context, vm arch.Arch, suite, version string) (*kernel.Kernel, error) {
	d, err := c.debian(vm, suite, version)
	if err != nil {
		return nil, err
	}
	src, err := d.Fetch(ctx)
	if errors.Is(err, kernel.ErrUnreachable) {
		return nil, fmt.Errorf("no Debian kernel for %s in the cache %s and the mirror is unreachable (%w): give one with --kernel (a kernel file, a linux-image .deb, a directory) or fetch once with network", vm.Debian, d.Cache, err)
	}
	if err != nil {
		return nil, fmt.Errorf("Debian kernel for %s: %w", vm.Debian, err)
	}
	c.o.progress("kernel: Debian %s %s %s from %s, sha256 %s (%s: %s)", src.Suite, src.Package, src.Version, src.Mirror, src.SHA256, fetched(src), src.Path)
	k, err := kernel.OpenMetered(src.Path, c.o.Meter)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", src.Path, err)
	}
	c.kernelDebian = &src
	return k, nil
}

// vmArch is the VM's architecture: --vm-arch, else the image's.
func (c *conversion) vmArch() (arch.Arch, error) {
	name := c.o.VMArch
	if name == "" {
		name = c.img.Platform.Architecture
	}
	a, err := arch.VM(name)
	if err != nil {
		return arch.Arch{}, fmt.Errorf("VM architecture: %w", err)
	}
	return a, nil
}

// writeKernel writes the kernel, and the uncompressed vmlinux when a
// hypervisor config needs one (vmdir.Config names it then).
func (c *conversion) writeKernel(k *kernel.Kernel, vm arch.Arch) error {
	if err := writeFileWith(c.st.path(vmdir.Kernel), k.WriteImage); err != nil {
		return fmt.Errorf("writing kernel: %w", err)
	}
	if !vmconfig.NeedsVmlinux(vm) {
		return nil
	}
	if err := writeFileWith(c.st.path(vmdir.Vmlinux), k.Vmlinux); err != nil {
		return fmt.Errorf("extracting vmlinux: %w", err)
	}
	return nil
}

func (c *conversion) writeInitramfs(k *kernel.Kernel, mods []kernel.Module, p *plan.Plan, interps []bootcfg.Interpreter, vm arch.Arch) error {
	initBin, err := initramfs.InitBinary(vm, c.initRef)
	if err != nil {
		return err
	}
	initURI := "embedded in c2vm"
	if c.initRef != "" {
		initURI = c.initRef
	}
	c.addPart(part{role: "guest init", name: "c2vm-init", version: c.o.Version, uri: initURI, purpose: "APPLICATION"}, initBin)
	files := []initramfs.File{{Path: "init", Mode: 0o755, Data: initBin}}
	var boot bytes.Buffer
	if err := p.Write(&boot); err != nil {
		return err
	}
	files = append(files, initramfs.File{Path: path.Clean(plan.Path)[1:], Mode: 0o644, Data: boot.Bytes()})
	for _, m := range mods {
		b, err := k.ReadModule(m)
		if err != nil {
			return err
		}
		files = append(files, initramfs.File{Path: m.Path, Mode: 0o644, Data: b})
	}
	for _, in := range interps {
		files = append(files, initramfs.File{Path: in.Path, Mode: 0o755, Data: in.Data})
	}
	opts := initramfs.Options{Compression: initramfs.CompressionFor(k), ModTime: c.o.Epoch}
	err = writeFileWith(c.st.path(vmdir.Initramfs), func(w io.Writer) error { return initramfs.Write(w, files, opts) })
	if err != nil {
		return fmt.Errorf("writing initramfs: %w", err)
	}
	return nil
}

// shareFS names the host-share filesystems the kernel has, built in or
// as modules (which the initramfs then carries: bootcfg.Optional).
func shareFS(k *kernel.Kernel) []string {
	var out []string
	for _, f := range []struct {
		name    string
		options []string
	}{
		{"virtiofs", []string{"CONFIG_VIRTIO_FS"}},
		{"9p", []string{"CONFIG_9P_FS", "CONFIG_NET_9P_VIRTIO"}},
	} {
		ok := true
		for _, o := range f.options {
			if b, m := k.Has(o); !b && !m {
				ok = false
			}
		}
		if ok {
			out = append(out, f.name)
		}
	}
	return out
}

// writeFileWith creates p (which must not exist) and fills it with write.
func writeFileWith(p string, write func(io.Writer) error) error {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := write(f); err != nil {
		return err
	}
	return f.Close()
}

// debianSource is manifest.json's record of a Debian kernel package,
// nil for none.
func debianSource(d *kernel.DebianSource) *vmdir.DebianSource {
	if d == nil {
		return nil
	}
	return &vmdir.DebianSource{Mirror: d.Mirror, Suite: d.Suite, Package: d.Package, Version: d.Version, SHA256: d.SHA256,
		InRelease: d.InRelease, Packages: d.Packages}
}
