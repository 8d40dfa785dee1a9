package vmimage

import "os"

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
