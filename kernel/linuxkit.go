package kernel

import (
	"fmt"
	"io/fs"
	"os"
)

// IsLinuxKit reports whether fsys holds LinuxKit's kernel image layout:
// /kernel (the image) beside /kernel.tar (lib/modules/VERSION/...), as
// linuxkit/kernel's Dockerfile lays it out.
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
// that carries none in its header, from lib/modules/VERSION.
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
	return k, nil
}
