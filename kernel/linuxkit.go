package kernel

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/c2vm/c2vm/internal/tarindex"
)

// IsLinuxKit reports whether fsys holds LinuxKit's kernel image layout:
// /kernel (the image) beside /kernel.tar (lib/modules/VERSION/...), as
// linuxkit/kernel's Dockerfile lays it out (with /kernel-dev.tar, the
// headers and the build's .config, when built so).
func IsLinuxKit(fsys fs.FS) bool {
	for _, n := range []string{"kernel", "kernel.tar"} {
		if fi, err := fs.Stat(fsys, n); err != nil || !fi.Mode().IsRegular() {
			return false
		}
	}
	return true
}

// FromLinuxKit reads a kernel in LinuxKit's layout (IsLinuxKit). The
// modules tarball is spooled to a temporary file and indexed like a
// .deb's data; the version comes from the image or, for an arm64 Image
// that carries none in its header, from lib/modules/VERSION. The config
// is a config file in kernel.tar, else the image's IKCONFIG, else
// kernel-dev.tar's usr/src/linux-headers-*/.config.
func FromLinuxKit(fsys fs.FS) (*Kernel, error) {
	f, err := fsys.Open("kernel.tar")
	if err != nil {
		return nil, fmt.Errorf("linuxkit kernel: %w", err)
	}
	defer f.Close()
	spool, err := os.CreateTemp("", ".c2vm-kernel-tar-")
	if err != nil {
		return nil, err
	}
	os.Remove(spool.Name())
	mods, err := spoolData(spool, "kernel.tar", f)
	if err != nil {
		spool.Close()
		return nil, fmt.Errorf("linuxkit kernel.tar: %w", err)
	}
	img, err := readFile(fsys, "kernel", "linuxkit kernel", MaxImageSize)
	if err != nil {
		mods.Close()
		return nil, err
	}
	k, err := identify(img, "kernel")
	if err != nil {
		mods.Close()
		return nil, fmt.Errorf("linuxkit kernel: %w", err)
	}
	k.src = mods
	k.findModules()
	if err := k.findConfig(mods); err != nil {
		mods.Close()
		return nil, fmt.Errorf("linuxkit kernel: %w", err)
	}
	if len(k.Config) == 0 {
		if err := k.devConfig(fsys); err != nil {
			mods.Close()
			return nil, fmt.Errorf("linuxkit kernel-dev.tar: %w", err)
		}
	}
	return k, nil
}

// devConfig reads the config from kernel-dev.tar, when there is one:
// usr/src/linux-headers-VERSION/.config, else another linux-headers-*
// directory's (linuxkit/kernel's Dockerfile copies the build's .config
// there). The tar is streamed, not spooled: the headers are tens of MB
// and only one small file is wanted.
func (k *Kernel) devConfig(fsys fs.FS) error {
	f, err := fsys.Open("kernel-dev.tar")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	var found []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		dir, ok := strings.CutSuffix(tarindex.Clean(h.Name), "/.config")
		if !ok || !h.FileInfo().Mode().IsRegular() || path.Dir(dir) != "usr/src" || !strings.HasPrefix(path.Base(dir), "linux-headers-") {
			continue
		}
		b, err := readAll(tr, maxConfigSize, h.Name)
		if err != nil {
			return err
		}
		if found = b; path.Base(dir) == "linux-headers-"+k.Version {
			break
		}
	}
	if found != nil {
		k.Config = ParseConfig(found)
	}
	return nil
}
