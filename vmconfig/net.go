package vmconfig

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
)

// The guest's NIC under QEMU and libvirt: QEMU's user-mode networking
// (slirp: the guest is 10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3, which
// the init configures) on a virtio-net PCI device. Every machine c2vm boots
// has a PCIe root bus named pcie.0 — q35's, and the generic host bridge
// (gpex) of arm64's and riscv64's virt — so one device line serves all.
const (
	netdevID  = "net0"
	netDevice = "virtio-net-pci"
)

// CheckForwards validates forwards for QEMU's hostfwd: canonical, and an
// IPv4 host address, since the slirp of QEMU 7.2 (Debian 12) refuses an
// IPv6 one ("Invalid host forwarding rule ... (Bad host address)"). It
// runs before any forward reaches a config; the CLI calls it too, to make
// a bad -p a usage error.
func CheckForwards(fs []plan.Forward) error {
	for _, f := range fs {
		if err := f.Check(); err != nil {
			return err
		}
		if a, _ := netip.ParseAddr(f.HostIP); !a.Is4() {
			return fmt.Errorf("port mapping %s: QEMU's user-mode networking forwards only from IPv4 host addresses", f)
		}
	}
	return nil
}

// netdev is QEMU's -netdev value: user-mode networking with a hostfwd
// per forward, "user,id=ID,hostfwd=tcp:127.0.0.1:8080-:80". The guest
// address is left out: slirp forwards to its first DHCP address,
// 10.0.2.15, the guest's static one.
func netdev(id string, fs []plan.Forward) (string, error) {
	if err := CheckForwards(fs); err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("user,id=" + id)
	for _, f := range fs {
		fmt.Fprintf(&b, ",hostfwd=%s:%s:%d-:%d", f.Proto, f.HostIP, f.HostPort, f.GuestPort)
	}
	return b.String(), nil
}

// dhcpArg tells the guest init to lease eth0's address by DHCP: Xen's vif
// and Firecracker's tap join a host network that is not QEMU's user mode
// (the init's default); the kernel argument overrides the boot plan's mode.
const dhcpArg = plan.ArgNet + "=" + plan.NetDHCP

// maxDataDisks keeps device names within one letter (vdb–vdz).
const maxDataDisks = 25

// checkDataDisks validates the data disks' file names: plain names in Dir
// of letters, digits and ._- (not leading "."), so that none can carry a
// QEMU option (a comma), an xl key, XML or a shell word into a config.
func checkDataDisks(names []string) error {
	if len(names) > maxDataDisks {
		return fmt.Errorf("%d data disks: at most %d", len(names), maxDataDisks)
	}
	for _, n := range names {
		ok := n != "" && n[0] != '.' && strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == ""
		if !ok {
			return fmt.Errorf("data disk %q: not a plain file name (letters, digits and ._- only)", n)
		}
	}
	return nil
}

// diskDev names the i-th disk (0: the root disk) with a prefix: vda, vdb...
func diskDev(prefix string, i int) string { return prefix + string(rune('a'+i)) }

// forwardList prints forwards in -p form for a comment: "127.0.0.1:8080:80/tcp ...".
func forwardList(fs []plan.Forward) string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	return strings.Join(out, " ")
}
