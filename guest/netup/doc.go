// Package netup brings a guest's network up from PID 1 with nothing but
// the standard library and golang.org/x/sys/unix, so that it fits the
// static init c2vm puts in every VM: links up, addresses and the default
// route through rtnetlink, a small DHCPv4 client (RFC 2131/2132) on a
// packet socket, and the contents of /etc/resolv.conf and /etc/hosts.
//
// User-mode networking (QEMU's slirp or passt) has fixed addresses:
//
//	netup.Up("lo")
//	netup.WaitLink(ctx, "eth0")
//	netup.Up("eth0")
//	netup.AddrAdd("eth0", netip.MustParsePrefix("10.0.2.15/24"))
//	netup.RouteAddDefault("eth0", netip.MustParseAddr("10.0.2.2"))
//
// A bridge or a tap asks a DHCP server instead:
//
//	lease, err := netup.DHCP(ctx, "eth0", hostname)
//	...
//	err = lease.Apply("eth0")
//	os.WriteFile("/etc/resolv.conf", []byte(netup.ResolvConf(lease.DNS, lease.Domain)), 0o644)
//
// The link functions are Linux-only (*_linux.go); the DHCP message codec
// and the file contents are portable and tested on every host.
package netup
