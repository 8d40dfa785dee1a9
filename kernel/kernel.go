// Package kernel identifies a Linux kernel — a kernel image file, a
// Debian/Ubuntu linux-image .deb, a directory (Yocto deploy dir, or a root
// with boot/ and lib/modules/), or one the container image carries — reads
// its configuration and computes which modules a boot needs.
//
//	k, err := kernel.Open("linux-image-6.1.0-28-cloud-arm64.deb")
//	defer k.Close()
//	mods, err := k.Closure([]string{"CONFIG_VIRTIO_BLK", "CONFIG_OVERLAY_FS"})
package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// Errors a caller may test with errors.Is.
var (
	ErrUnknownFormat  = errors.New("unknown kernel format")
	ErrNoKernel       = errors.New("no kernel found")
	ErrWrongArch      = errors.New("kernel is for another architecture")
	ErrMissingFeature = errors.New("kernel lacks a needed feature")
)

// Kernel is an identified kernel with its config and modules.
type Kernel struct {
	Arch    string // GOARCH: amd64, arm64, riscv64
	Format  string // of the image as booted (see WriteImage)
	Version string
	Config  map[string]string // CONFIG_X → "y", "m", value; empty when unknown

	image   []byte // bootable image (decompressed when it was gzip)
	src     source // where modules come from; nil when none
	modRoot string // "lib/modules/VER" inside src
	mods    map[string]*modinfo
}

// Close releases what the kernel is read from (a .deb's spool).
func (k *Kernel) Close() error {
	if k.src != nil {
		return k.src.Close()
	}
	return nil
}

// Meter shows one long read live (as image.Options.Meter does): it is
// given what is read and its total bytes, the bytes are written to it as
// they are read, and it is closed at the end.
type Meter = func(what string, total int64) io.WriteCloser

// Open identifies the kernel at p: an image file, a .deb, or a directory.
// Anything else (a FIFO, a device) is refused before it is opened.
func Open(p string) (*Kernel, error) { return OpenMetered(p, nil) }

// OpenMetered is Open showing a .deb's unpacking on m (nil: nothing).
func OpenMetered(p string, m Meter) (*Kernel, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		src, err := newFSSource(os.DirFS(p), ".")
		if err != nil {
			return nil, err
		}
		return fromSource(src, p)
	}
	// Any size here: a .deb is spooled within its own bounds, an image
	// file is checked against MaxImageSize by openFile.
	if err := checkRegular(p, fi, math.MaxInt64); err != nil {
		return nil, err
	}
	head := make([]byte, 8)
	if f, err := os.Open(p); err == nil {
		io.ReadFull(f, head)
		f.Close()
	}
	if string(head) == "!<arch>\n" {
		src, err := openDeb(p, m)
		if err != nil {
			return nil, err
		}
		k, err := fromSource(src, p)
		if err != nil {
			src.Close()
		}
		return k, err
	}
	return openFile(p)
}

// FromFS finds a kernel the container image carries: boot/vmlinuz-* or
// usr/lib/modules/*/vmlinuz, with its modules.
func FromFS(fsys fs.FS) (*Kernel, error) {
	src, err := newFSSource(fsys, "boot", "usr/lib/modules", "lib/modules")
	if err != nil {
		return nil, err
	}
	return fromSource(src, "the image")
}

// imageNames are the kernel file names looked for, in order.
var imageNames = []*regexp.Regexp{
	regexp.MustCompile(`^boot/(vmlinuz|vmlinux|Image|bzImage)-(.+)$`),
	regexp.MustCompile(`^(usr/)?lib/modules/([^/]+)/(vmlinuz|Image)$`),
	regexp.MustCompile(`^(bzImage|Image|Image\.gz|vmlinux|vmlinuz)$`),
	regexp.MustCompile(`^(bzImage|Image|vmlinux|vmlinuz)-(.+\.bin)$`),
}

func fromSource(src source, where string) (*Kernel, error) {
	var imgName string
	for _, re := range imageNames {
		for _, n := range src.names() {
			if re.MatchString(n) && !strings.HasSuffix(n, ".sig") {
				imgName = n
				break
			}
		}
		if imgName != "" {
			break
		}
	}
	if imgName == "" {
		return nil, fmt.Errorf("%s: %w (looked for boot/vmlinuz-*, lib/modules/*/vmlinuz, bzImage, Image)", where, ErrNoKernel)
	}
	b, err := src.read(imgName, MaxImageSize)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	k, err := identify(b, imgName)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %w", where, imgName, err)
	}
	k.src = src
	k.findModules()
	if err := k.findConfig(src); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return k, nil
}

func openFile(p string) (*Kernel, error) {
	b, err := readFile(os.DirFS(filepath.Dir(p)), filepath.Base(p), p, MaxImageSize)
	if err != nil {
		return nil, err
	}
	k, err := identify(b, p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	// Modules and config beside it: /boot/vmlinuz-V with /boot/config-V
	// and /lib/modules/V, or Yocto's deploy dir.
	dir := filepath.Dir(p)
	root := filepath.Dir(dir)
	if src, err := newFSSource(os.DirFS(root), path.Base(filepath.ToSlash(dir)), "lib/modules"); err == nil {
		k.src = src
		k.findModules()
		if err := k.findConfig(src); err != nil {
			return nil, fmt.Errorf("%s: %w", root, err)
		}
	}
	return k, nil
}

func identify(b []byte, name string) (*Kernel, error) {
	if len(b) > 2 && b[0] == 0x1f && b[1] == 0x8b {
		d, err := decompressFile(".gz", b, MaxImageSize)
		if err != nil {
			return nil, fmt.Errorf("gzip kernel: %w", err)
		}
		b = d
	}
	id, err := Identify(b)
	if err != nil {
		return nil, err
	}
	if id.Version == "" {
		id.Version = versionFromName(name)
	}
	return &Kernel{Arch: id.Arch, Format: id.Format, Version: id.Version, image: b, Config: map[string]string{}}, nil
}

var nameVersion = regexp.MustCompile(`(?:vmlinuz|vmlinux|Image|bzImage)-(.+)$`)

func versionFromName(name string) string {
	if m := nameVersion.FindStringSubmatch(path.Base(name)); m != nil {
		return m[1]
	}
	return ""
}

// findConfig reads config-VER (boot/config-VER, lib/modules/VER/config),
// else the image's embedded IKCONFIG. A config that cannot be read (past
// maxConfigSize, not a regular file) is an error, not a silent fallback;
// a dangling symlink is skipped.
func (k *Kernel) findConfig(src source) error {
	for _, n := range src.names() {
		base := path.Base(n)
		if base == "config-"+k.Version || strings.HasSuffix(n, "lib/modules/"+k.Version+"/config") || base == "config" && k.Version == "" {
			b, err := src.read(n, maxConfigSize)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return err
			}
			k.Config = ParseConfig(b)
			return nil
		}
	}
	if b := ikconfig(k.image); b != nil {
		k.Config = ParseConfig(b)
	}
	return nil
}

// Has reports how the kernel provides a config option.
func (k *Kernel) Has(option string) (builtin, module bool) {
	v := k.Config[option]
	return v == "y", v == "m"
}

// CheckArch fails unless the kernel runs on a VM of goarch.
func (k *Kernel) CheckArch(goarch string) error {
	if k.Arch != goarch {
		return fmt.Errorf("%w: kernel %s is %s, the VM is %s", ErrWrongArch, k.Version, k.Arch, goarch)
	}
	return nil
}

// WriteImage writes the kernel to boot (-kernel for QEMU): a bzImage or
// Image as is; a gzip-compressed Image decompressed, as Firecracker and
// Xen want it raw.
func (k *Kernel) WriteImage(w io.Writer) error {
	_, err := io.Copy(w, bytes.NewReader(k.image))
	return err
}

// XenWarnings names what a Xen guest would miss in this kernel.
func (k *Kernel) XenWarnings() []string {
	var w []string
	for _, o := range []string{"CONFIG_XEN_BLKDEV_FRONTEND", "CONFIG_HVC_XEN"} {
		if b, m := k.Has(o); !b && !m {
			w = append(w, o+" is not set: the kernel cannot use Xen's "+map[string]string{"CONFIG_XEN_BLKDEV_FRONTEND": "disks (xvda)", "CONFIG_HVC_XEN": "console (hvc0)"}[o])
		}
	}
	if k.Arch == "amd64" {
		if b, _ := k.Has("CONFIG_XEN_PVH"); !b {
			w = append(w, "CONFIG_XEN_PVH is not set: xl's type=\"pvh\" cannot boot it")
		}
	}
	return w
}
