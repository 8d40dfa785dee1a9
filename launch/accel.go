package launch

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/c2vm/c2vm/internal/cache"
	"github.com/c2vm/c2vm/vmconfig"
)

var hostArch = runtime.GOARCH

// chooseAccel resolves auto: KVM only for a VM of the host's arch, with
// /dev/kvm usable, and a probe boot that reaches the kernel's first
// message — /dev/kvm can exist and still hang guests.
func chooseAccel(ctx context.Context, accel string, vm vmconfig.VM, bin string) (string, error) {
	switch accel {
	case "kvm", "tcg":
		return accel, nil
	case "", "auto":
	default:
		return "", fmt.Errorf("--accel %q: want auto, kvm or tcg", accel)
	}
	if vm.Arch != hostArch {
		return "tcg", nil
	}
	if f, err := os.OpenFile("/dev/kvm", os.O_RDWR, 0); err != nil {
		return "tcg", nil
	} else {
		f.Close()
	}
	if probeKVM(ctx, vm, bin) {
		return "kvm", nil
	}
	return "tcg", nil
}

// probeKVM boots the VM's own kernel under KVM without an initramfs for at
// most ProbeTimeout and reports whether it printed its banner. A host
// whose KVM is broken (this project's build machine: /dev/kvm opens, the
// guest never prints) pays that probe once per host boot: the answer is
// cached under the host's boot_id in $C2VM_CACHE (kvm-probe-ARCH).
func probeKVM(ctx context.Context, vm vmconfig.VM, bin string) bool {
	cache := probeCache(vm.Arch)
	if ok, found := readProbe(cache); found {
		return ok
	}
	ok := bootProbe(ctx, vm, qemuBinary(bin, vm))
	if ctx.Err() == nil {
		writeProbe(cache, ok)
	}
	return ok
}

// ProbeTimeout bounds the KVM probe; a working KVM prints the kernel's
// banner in well under a second.
var ProbeTimeout = vmconfig.ProbeSeconds * time.Second

// bootProbe runs vmconfig's probe command, the one qemu.sh runs too.
func bootProbe(ctx context.Context, vm vmconfig.VM, bin string) bool {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	args, err := vmconfig.ProbeArgs(vm, vm.Dir+string(filepath.Separator))
	if err != nil {
		return false
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil || cmd.Start() != nil {
		return false
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), vmconfig.ProbeBanner) {
			return true
		}
	}
	return false
}

// probeCache is the probe's cache file, "" when there is no home.
func probeCache(arch string) string {
	dir, err := cache.Dir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, vmconfig.ProbeCacheFile(arch))
}

// bootID identifies this boot of the host (proc(5)), so a cached probe
// is redone after a reboot, e.g. one that fixed KVM.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

func readProbe(file string) (ok, found bool) {
	id := bootID()
	if file == "" || id == "" {
		return false, false
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return false, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] != id {
		return false, false
	}
	return f[1] == "kvm", true
}

// writeProbe caches a probe's result; failing to is harmless.
func writeProbe(file string, ok bool) {
	id := bootID()
	if file == "" || id == "" {
		return
	}
	accel := "tcg"
	if ok {
		accel = "kvm"
	}
	if os.MkdirAll(filepath.Dir(file), 0o755) == nil {
		os.WriteFile(file, []byte(id+" "+accel+"\n"), 0o644)
	}
}
