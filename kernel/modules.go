package kernel

import (
	"bytes"
	"debug/elf"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Module is a kernel module to load at boot.
type Module struct {
	Name string // as the kernel knows it: underscores ("virtio_blk")
	// Path is where it goes in the initramfs: "lib/modules/VER/…/x.ko",
	// always uncompressed (the init loads it with finit_module).
	Path string
	src  string // name in the kernel's source
}

type modinfo struct {
	Module
	depends []string
	softpre []string
}

// configModule names the module that provides a config option when it is
// built as a module.
var configModule = map[string]string{
	"CONFIG_VIRTIO_PCI":          "virtio_pci",
	"CONFIG_VIRTIO_MMIO":         "virtio_mmio",
	"CONFIG_VIRTIO_BLK":          "virtio_blk",
	"CONFIG_VIRTIO_NET":          "virtio_net",
	"CONFIG_VIRTIO_CONSOLE":      "virtio_console",
	"CONFIG_OVERLAY_FS":          "overlay",
	"CONFIG_EXT4_FS":             "ext4",
	"CONFIG_SQUASHFS":            "squashfs",
	"CONFIG_EROFS_FS":            "erofs",
	"CONFIG_BINFMT_MISC":         "binfmt_misc",
	"CONFIG_XEN_BLKDEV_FRONTEND": "xen_blkfront",
	"CONFIG_XEN_NETDEV_FRONTEND": "xen_netfront",
	"CONFIG_PACKET":              "af_packet",
	"CONFIG_ACPI_BUTTON":         "button",
	"CONFIG_INPUT_EVDEV":         "evdev",
	"CONFIG_VIRTIO_FS":           "virtiofs",
	"CONFIG_9P_FS":               "9p",
	"CONFIG_BLK_DEV_DM":          "dm_mod",
	"CONFIG_DM_VERITY":           "dm_verity",
	"CONFIG_NET_9P_VIRTIO":       "9pnet_virtio",
	"CONFIG_TMPFS":               "", // built in or absent, never a module
}

var modFile = regexp.MustCompile(`^(?:usr/)?lib/modules/([^/]+)/.*\.ko(\.xz|\.zst|\.gz)?$`)

// findModules indexes the modules of the kernel's version.
func (k *Kernel) findModules() {
	k.mods = map[string]*modinfo{}
	for _, n := range k.src.names() {
		m := modFile.FindStringSubmatch(n)
		if m == nil || k.Version != "" && m[1] != k.Version {
			continue
		}
		if k.Version == "" {
			k.Version = m[1]
		}
		k.modRoot = n[:strings.Index(n, m[1])+len(m[1])]
		name := modName(path.Base(n))
		p := "lib/modules/" + m[1] + "/" + strings.TrimSuffix(n[len(k.modRoot)+1:], m[2])
		k.mods[name] = &modinfo{Module: Module{Name: name, Path: p, src: n}}
	}
}

func modName(file string) string {
	file = file[:strings.Index(file, ".ko")]
	return strings.ReplaceAll(file, "-", "_")
}

// ReadModule returns a module's uncompressed bytes.
func (k *Kernel) ReadModule(m Module) ([]byte, error) {
	b, err := k.src.read(m.src, MaxImageSize)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", m.Name, err)
	}
	d, err := decompressFile(m.src, b, MaxImageSize)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", m.Name, err)
	}
	return d, nil
}

// info reads (once) a module's .modinfo: depends= and softdep= pre:.
func (k *Kernel) info(name string) (*modinfo, error) {
	mi := k.mods[name]
	if mi == nil {
		return nil, nil
	}
	if mi.depends != nil {
		return mi, nil
	}
	b, err := k.ReadModule(mi.Module)
	if err != nil {
		return nil, err
	}
	data, err := readModinfo(b)
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	mi.depends, mi.softpre = parseModinfo(data)
	return mi, nil
}

// readModinfo returns a module's .modinfo section, nil when it has none.
// The section is read through its reader and bounded: a compressed
// section (SHF_COMPRESSED) states its own size and may be a zlib bomb.
func readModinfo(module []byte) ([]byte, error) {
	f, err := elf.NewFile(bytes.NewReader(module))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil || sec.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	return readAll(sec.Open(), maxModinfoSize, ".modinfo")
}

// parseModinfo reads the NUL-separated key=value strings of a .modinfo
// (include/linux/moduleparam.h, __MODULE_INFO): depends= (comma-separated
// module names) and softdep= ("pre: a b post: c"). Names are given as the
// kernel knows them, with underscores; depends is never nil.
func parseModinfo(data []byte) (depends, softpre []string) {
	depends = []string{}
	for _, kv := range bytes.Split(data, []byte{0}) {
		key, val, ok := strings.Cut(string(kv), "=")
		switch {
		case !ok:
		case key == "depends" && val != "":
			for _, d := range strings.Split(val, ",") {
				if d != "" {
					depends = append(depends, strings.ReplaceAll(d, "-", "_"))
				}
			}
		case key == "softdep":
			softpre = append(softpre, softdepPre(val)...)
		}
	}
	return depends, softpre
}

// softdepPre parses "pre: a b post: c" and returns a, b.
func softdepPre(v string) []string {
	var out []string
	pre := false
	for _, w := range strings.Fields(v) {
		switch w {
		case "pre:":
			pre = true
		case "post:":
			pre = false
		default:
			if pre {
				out = append(out, strings.ReplaceAll(w, "-", "_"))
			}
		}
	}
	return out
}

// ConfigWarning names what cannot be checked for the options when the
// kernel's config was not found: "" when it was. Closure then loads each
// option's module found by name and takes the others as built in, so a
// kernel without them fails at boot, not here.
func (k *Kernel) ConfigWarning(options []string) string {
	if len(k.Config) != 0 {
		return ""
	}
	return fmt.Sprintf("kernel %s: no config found (config-%s beside it, CONFIG_IKCONFIG, or a LinuxKit kernel-dev.tar): cannot check that it has %s; modules with these names are loaded, the rest taken as built in",
		k.Version, k.Version, strings.Join(options, ", "))
}

// Closure returns the modules needed for the config options, dependencies
// first. An option built in needs none; one neither built in nor a module
// with its .ko present is an error wrapping ErrMissingFeature. Optional
// options (see ClosureOptional) never fail.
func (k *Kernel) Closure(options []string) ([]Module, error) {
	return k.closure(options, nil)
}

// ClosureOptional is Closure for required options plus optional ones
// included only when the kernel has them as modules (virtio-mmio for
// Firecracker, Xen's block frontend).
func (k *Kernel) ClosureOptional(required, optional []string) ([]Module, error) {
	return k.closure(required, optional)
}

func (k *Kernel) closure(required, optional []string) ([]Module, error) {
	var roots []string
	for _, o := range required {
		name, err := k.moduleFor(o)
		if err != nil {
			return nil, err
		}
		if name != "" {
			roots = append(roots, name)
		}
	}
	for _, o := range optional {
		if name, err := k.moduleFor(o); err == nil && name != "" {
			roots = append(roots, name)
		}
	}
	var out []Module
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(string, string) error
	visit = func(name, from string) error {
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		mi, err := k.info(name)
		if err != nil {
			return err
		}
		if mi == nil {
			if from == "" {
				return fmt.Errorf("%w: module %s is missing", ErrMissingFeature, name)
			}
			return fmt.Errorf("%w: module %s (needed by %s) is missing", ErrMissingFeature, name, from)
		}
		state[name] = 1
		deps := append(append([]string{}, mi.softpre...), mi.depends...)
		sort.Strings(deps)
		for _, d := range deps {
			if k.mods[d] == nil && contains(mi.softpre, d) {
				continue // a soft dependency may be built in
			}
			if err := visit(d, name); err != nil {
				return err
			}
		}
		state[name] = 2
		out = append(out, mi.Module)
		return nil
	}
	for _, r := range roots {
		if err := visit(r, ""); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// moduleFor names the module to load for option, "" when built in.
// Without a config (ConfigWarning), an option whose module is with the
// kernel is taken as that module, any other as built in.
func (k *Kernel) moduleFor(option string) (string, error) {
	if len(k.Config) == 0 {
		if name := configModule[option]; k.mods[name] != nil {
			return name, nil
		}
		return "", nil
	}
	builtin, module := k.Has(option)
	switch {
	case builtin:
		return "", nil
	case module:
		name := configModule[option]
		if name == "" || k.mods[name] == nil {
			return "", fmt.Errorf("%w: %s=m but its module is not with kernel %s", ErrMissingFeature, option, k.Version)
		}
		return name, nil
	}
	return "", fmt.Errorf("%w: kernel %s has %s neither built in nor as a module", ErrMissingFeature, k.Version, option)
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
