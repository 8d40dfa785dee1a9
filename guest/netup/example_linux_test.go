package netup_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"time"

	"github.com/c2vm/c2vm/guest/netup"
)

// User-mode networking (QEMU's slirp or passt): fixed addresses.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, err := range []error{
		netup.Up("lo"),
		netup.WaitLink(ctx, "eth0"),
		netup.Up("eth0"),
		netup.AddrAdd("eth0", netip.MustParsePrefix("10.0.2.15/24")),
		netup.RouteAddDefault("eth0", netip.MustParseAddr("10.0.2.2")),
	} {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return
		}
	}
	dns := []netip.Addr{netip.MustParseAddr("10.0.2.3")}
	os.WriteFile("/etc/resolv.conf", []byte(netup.ResolvConf(dns, "")), 0o644)
	os.WriteFile("/etc/hosts", []byte(netup.Hosts("web", netip.MustParseAddr("10.0.2.15"))), 0o644)
}

// A bridge or a tap: ask a DHCP server, then apply what it leased.
func ExampleDHCP() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := netup.Up("eth0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	lease, err := netup.DHCP(ctx, "eth0", "web")
	if err == nil {
		err = lease.Apply("eth0")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return
	}
	fmt.Println("leased", lease.Addr, "via", lease.Router, "for", lease.Duration)
}
