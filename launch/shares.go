package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/c2vm/c2vm/bootcfg"
	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/vmconfig"
)

// Share is a host directory given to the VM: c2vm run -v HOST:GUEST[:ro].
type Share struct {
	Host, Guest string
	ReadOnly    bool
}

// ParseShare reads Docker's -v HOSTDIR:GUESTDIR[:ro|:rw]. The host
// directory must exist; the guest path follows the VOLUME rules
// (bootcfg.ValidateVolume), and the host path may hold no comma, which
// QEMU and virtiofsd read as an option separator.
func ParseShare(s string) (Share, error) {
	f := strings.Split(s, ":")
	if len(f) < 2 || len(f) > 3 || len(f) == 3 && f[2] != "ro" && f[2] != "rw" {
		return Share{}, fmt.Errorf("-v %q: want HOSTDIR:GUESTDIR[:ro]", s)
	}
	host, err := filepath.Abs(f[0])
	if err != nil {
		return Share{}, fmt.Errorf("-v %q: %w", s, err)
	}
	if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
		return Share{}, fmt.Errorf("-v %q: %s is not a directory", s, host)
	}
	if strings.ContainsAny(host, ",\n") {
		return Share{}, fmt.Errorf("-v %q: a host path with a comma cannot be shared", s)
	}
	guest, err := bootcfg.CleanVolume(f[1])
	if err != nil {
		return Share{}, fmt.Errorf("-v %q: guest path: %w", s, err)
	}
	return Share{Host: host, Guest: guest, ReadOnly: len(f) == 3 && f[2] == "ro"}, nil
}

// virtiofsd is Debian's (QEMU's C) daemon; it runs as root only.
var virtiofsd = "/usr/lib/qemu/virtiofsd"

// sharing is what the shares add to a boot: QEMU arguments, kernel
// arguments for the init's Shares step, and the daemons serving them.
type sharing struct {
	qemu    []string
	kernel  []plan.Share
	daemons []*exec.Cmd
	dir     string
}

// ErrNoShareFS is returned when neither virtiofs nor 9p can serve -v.
var ErrNoShareFS = errors.New("cannot share host directories")

// shareFS picks the filesystem: virtiofs when the kernel has it and
// virtiofsd can run (as root), else 9p when the kernel has it (QEMU serves
// it itself, as the user: files the guest writes are the user's).
func shareFS(kernelFS []string) (string, error) {
	has := func(fs string) bool {
		for _, k := range kernelFS {
			if k == fs {
				return true
			}
		}
		return false
	}
	_, daemonErr := os.Stat(virtiofsd)
	switch {
	case has("virtiofs") && os.Geteuid() == 0 && daemonErr == nil:
		return "virtiofs", nil
	case has("9p"):
		return "9p", nil
	case has("virtiofs") && daemonErr != nil:
		return "", fmt.Errorf("%w: the kernel has virtiofs but %s is missing (Debian's qemu-system-common), and it has no 9p (CONFIG_NET_9P is not set; Debian's generic linux-image kernels have it)", ErrNoShareFS, virtiofsd)
	case has("virtiofs"):
		return "", fmt.Errorf("%w: the kernel has virtiofs, whose daemon (%s) runs only as root, and no 9p (CONFIG_NET_9P is not set; Debian's generic linux-image kernels have it): run as root or use such a kernel", ErrNoShareFS, virtiofsd)
	}
	return "", fmt.Errorf("%w: the kernel has neither virtiofs (CONFIG_VIRTIO_FS) nor 9p (CONFIG_9P_FS, CONFIG_NET_9P_VIRTIO)", ErrNoShareFS)
}

// startShares prepares the shares and starts their daemons; stop ends
// them.
func startShares(ctx context.Context, shares []Share, kernelFS []string, memory int) (*sharing, error) {
	sh := &sharing{}
	if len(shares) == 0 {
		return sh, nil
	}
	fs, err := shareFS(kernelFS)
	if err != nil {
		return nil, err
	}
	if fs == "virtiofs" {
		if sh.dir, err = os.MkdirTemp("", "c2vm-fs-"); err != nil {
			return nil, err
		}
		if memory == 0 {
			memory = vmconfig.DefaultMemory
		}
		// vhost-user needs the guest's RAM in shared memory.
		sh.qemu = append(sh.qemu, "-object", fmt.Sprintf("memory-backend-memfd,id=c2vmmem,size=%dM,share=on", memory),
			"-numa", "node,memdev=c2vmmem")
	}
	for i, s := range shares {
		tag := fmt.Sprintf("c2vm%d", i)
		sh.kernel = append(sh.kernel, plan.Share{Tag: tag, FSType: fs, Path: s.Guest, ReadOnly: s.ReadOnly})
		if fs == "9p" {
			opt := "local,path=" + s.Host + ",mount_tag=" + tag + ",security_model=none,id=" + tag
			if s.ReadOnly {
				opt += ",readonly=on"
			}
			sh.qemu = append(sh.qemu, "-virtfs", opt)
			continue
		}
		sock := filepath.Join(sh.dir, tag+".sock")
		if err := sh.startDaemon(ctx, sock, s.Host); err != nil {
			sh.stop()
			return nil, err
		}
		sh.qemu = append(sh.qemu, "-chardev", "socket,id="+tag+",path="+sock,
			"-device", "vhost-user-fs-pci,chardev="+tag+",tag="+tag)
	}
	return sh, nil
}

// startDaemon starts virtiofsd for one directory and waits for its socket.
func (sh *sharing) startDaemon(ctx context.Context, sock, dir string) error {
	cmd := exec.CommandContext(ctx, virtiofsd, "--socket-path="+sock, "-o", "source="+dir, "-o", "cache=auto")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", virtiofsd, err)
	}
	sh.daemons = append(sh.daemons, cmd)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return nil
		}
		if cmd.ProcessState != nil {
			break
		}
	}
	return fmt.Errorf("%s for %s did not start: %s", virtiofsd, dir, strings.TrimSpace(stderr.String()))
}

func (sh *sharing) stop() {
	for _, d := range sh.daemons {
		d.Process.Kill()
		d.Wait()
	}
	if sh.dir != "" {
		os.RemoveAll(sh.dir)
	}
}
