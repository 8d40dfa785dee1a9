package convert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/initramfs"
	"github.com/c2vm/c2vm/kernel"
)

// writeBoot writes config.json and, unless NoKernel, the kernel, the
// initramfs with boot.json and the hypervisor configs.
func (c *conversion) writeBoot(ctx context.Context) error {
	spec, err := bootcfg.Spec(c.img.Config, c.tree.FS(), c.o.Overrides, c.annotations())
	if err != nil {
		return err
	}
	if err := writeJSON(c.st.path("config.json"), spec); err != nil {
		return err
	}
	c.o.progress("spec: %q as %d:%d in %s", spec.Process.Args, spec.Process.User.UID, spec.Process.User.GID, spec.Process.Cwd)
	if c.o.NoKernel {
		return nil
	}
	k, err := c.openKernel()
	if err != nil {
		return err
	}
	defer k.Close()
	vmArch := c.vmArch()
	if err := k.CheckArch(vmArch); err != nil {
		return err
	}
	binfmts, interp, err := c.binfmt(vmArch)
	if err != nil {
		return err
	}
	binfmtD, err := bootcfg.BinfmtDFiles(c.tree.FS())
	if err != nil {
		return err
	}
	p := bootcfg.Plan(spec, bootcfg.PlanOptions{FSType: c.manifest.Rootfs, Binfmt: binfmts, BinfmtD: binfmtD})
	mods, err := k.ClosureOptional(bootcfg.Requirements(p), bootcfg.Optional())
	if err != nil {
		return err
	}
	for _, m := range mods {
		p.Modules = append(p.Modules, m.Path)
	}
	if err := writeJSON(c.st.path("boot.json"), p); err != nil {
		return err
	}
	if err := c.writeInitramfs(k, mods, p, interp, vmArch); err != nil {
		return err
	}
	if err := c.writeKernel(k, vmArch); err != nil {
		return err
	}
	c.manifest.VMArch = vmArch
	c.manifest.Kernel = &KernelInfo{Version: k.Version, Arch: k.Arch, Format: k.Format}
	for _, m := range mods {
		c.manifest.Kernel.Modules = append(c.manifest.Kernel.Modules, m.Name)
	}
	c.o.progress("kernel: %s %s (%s), %d modules", k.Arch, k.Version, k.Format, len(mods))
	for _, w := range k.XenWarnings() {
		c.o.progress("warning: xl.cfg: %s", w)
	}
	return c.writeVMConfigs(vmArch)
}

func (c *conversion) annotations() map[string]string {
	return map[string]string{
		"io.c2vm.image.manifest-digest": c.img.ManifestDigest.String(),
		"io.c2vm.image.config-digest":   c.img.ConfigDigest.String(),
	}
}

func (c *conversion) openKernel() (*kernel.Kernel, error) {
	if c.o.Kernel != "" {
		k, err := kernel.Open(c.o.Kernel)
		if err != nil {
			return nil, fmt.Errorf("kernel %s: %w", c.o.Kernel, err)
		}
		return k, nil
	}
	k, err := kernel.FromFS(c.tree.FS())
	if errors.Is(err, kernel.ErrNoKernel) {
		return nil, fmt.Errorf("the image carries no kernel (/boot/vmlinuz-*, /usr/lib/modules/*/vmlinuz): give one with --kernel (a kernel file, a linux-image .deb or a directory), or use --no-kernel for the root filesystem only")
	}
	if err != nil {
		return nil, fmt.Errorf("kernel in the image: %w", err)
	}
	return k, nil
}

// vmArch is the VM's GOARCH: --vm-arch, else the image's.
func (c *conversion) vmArch() string {
	if c.o.VMArch != "" {
		return normalizeArch(c.o.VMArch)
	}
	return c.img.Platform.Architecture
}

func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

func (c *conversion) writeKernel(k *kernel.Kernel, vmArch string) error {
	f, err := os.OpenFile(c.st.path("kernel"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := k.WriteImage(f); err != nil {
		return fmt.Errorf("writing kernel: %w", err)
	}
	if err := f.Close(); err != nil {
		return err
	}
	if vmArch != "amd64" {
		return nil
	}
	// Firecracker on x86_64 boots only an uncompressed ELF vmlinux.
	var buf bytes.Buffer
	if err := k.Vmlinux(&buf); err != nil {
		return fmt.Errorf("extracting vmlinux: %w", err)
	}
	return os.WriteFile(c.st.path("vmlinux"), buf.Bytes(), 0o644)
}

func (c *conversion) writeInitramfs(k *kernel.Kernel, mods []kernel.Module, p *plan.Plan, interp []initramfs.File, vmArch string) error {
	initBin, err := initramfs.InitBinary(vmArch, c.o.Init)
	if err != nil {
		return err
	}
	files := []initramfs.File{{Path: "init", Mode: 0o755, Data: initBin}}
	boot, err := marshalIndent(p)
	if err != nil {
		return err
	}
	files = append(files, initramfs.File{Path: path.Clean(plan.Path)[1:], Mode: 0o644, Data: boot})
	for _, m := range mods {
		b, err := k.ReadModule(m)
		if err != nil {
			return err
		}
		files = append(files, initramfs.File{Path: m.Path, Mode: 0o644, Data: b})
	}
	files = append(files, interp...)
	comp := initramfs.Gzip
	if builtin, _ := k.Has("CONFIG_RD_ZSTD"); builtin {
		comp = initramfs.Zstd
	}
	f, err := os.OpenFile(c.st.path("initramfs.img"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := initramfs.Write(f, files, initramfs.Options{Compression: comp, ModTime: c.o.Epoch}); err != nil {
		return fmt.Errorf("writing initramfs: %w", err)
	}
	return f.Close()
}
