package vmimage

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/c2vm/c2vm/vmdir"
)

// readVM and readMulti are this package's readers of VM directories:
// vmdir's, and the VM's writable state (the disk, data disks), which
// vmdir.Read checks only to be there, checked against its sha256 too. A
// containerDisk is the disk as converted: one a VM has booted and written
// to since is refused, as is one that was pulled and changed.
func readVM(dir string) (*vmdir.VM, error) {
	vm, err := vmdir.Read(dir)
	if err != nil {
		return nil, err
	}
	return vm, checkWritable(vm)
}

func readMulti(dir string) (*vmdir.Multi, error) {
	m, err := vmdir.ReadMulti(dir)
	if err != nil {
		return nil, err
	}
	for _, vm := range m.Platforms {
		if err := checkWritable(vm); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func checkWritable(vm *vmdir.VM) error {
	for name, want := range vm.Artifacts {
		if !vmdir.Writable(name) {
			continue
		}
		got, err := vmdir.DigestFile(filepath.Join(vm.Dir, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: changed since the conversion (%s says sha256 %s, the file has %s; did a VM boot it?): convert again",
				filepath.Join(vm.Dir, name), vmdir.ManifestFile, want.SHA256, got.SHA256)
		}
	}
	return nil
}

// plainName reports whether s names a file in a directory itself: no
// separator, not "." or "..".
func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`)
}

// fileMode is an artifact's mode in a layer and after a restore: 0755
// for what its owner may run (qemu.sh), else 0644, whatever the umask.
func fileMode(p string) (int64, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	if fi.Mode()&0o100 != 0 {
		return 0o755, nil
	}
	return 0o644, nil
}
