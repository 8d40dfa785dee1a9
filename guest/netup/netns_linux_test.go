package netup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/c2vm/c2vm/internal/fixtures"
	"golang.org/x/sys/unix"
)

// These tests run the package against the real kernel in throw-away
// network namespaces and read the result back with iproute2.

// newNetns creates a network namespace removed when the test ends.
func newNetns(t *testing.T, role string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		fixtures.Skip(t, "network namespaces need root")
	}
	fixtures.NeedTools(t, "ip")
	name := fmt.Sprintf("c2vm-netup-%d-%s", os.Getpid(), role)
	ip(t, "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return name
}

// ip runs iproute2 and returns its output.
func ip(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// inNetns runs fn on an OS thread moved into the namespace ns. The thread
// stays locked, so the runtime discards it when fn returns instead of
// reusing it in the wrong namespace.
func inNetns(ns string, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// ipLink is what `ip -j addr show` says about an interface.
type ipLink struct {
	Flags    []string `json:"flags"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		PrefixLen int    `json:"prefixlen"`
		Broadcast string `json:"broadcast"`
	} `json:"addr_info"`
}

// checkApplied checks, through iproute2, that dev in ns is up with the
// IPv4 address prefix (and its broadcast address) and a default route via
// gw.
func checkApplied(t *testing.T, ns, dev string, prefix netip.Prefix, brd string, gw netip.Addr) {
	t.Helper()
	var links []ipLink
	if err := json.Unmarshal(ip(t, "-n", ns, "-j", "addr", "show", "dev", dev), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -j addr show dev %s: %v %v", dev, links, err)
	}
	if !slices.Contains(links[0].Flags, "UP") {
		t.Errorf("%s flags %v: not UP", dev, links[0].Flags)
	}
	var inet []string
	for _, a := range links[0].AddrInfo {
		if a.Family == "inet" {
			inet = append(inet, fmt.Sprintf("%s/%d brd %s", a.Local, a.PrefixLen, a.Broadcast))
		}
	}
	if want := []string{prefix.String() + " brd " + brd}; !reflect.DeepEqual(inet, want) {
		t.Errorf("%s IPv4 addresses %v, want %v", dev, inet, want)
	}
	var routes []struct{ Dst, Gateway, Dev string }
	if err := json.Unmarshal(ip(t, "-n", ns, "-j", "-4", "route", "show", "default"), &routes); err != nil {
		t.Fatal(err)
	}
	want := []struct{ Dst, Gateway, Dev string }{{"default", gw.String(), dev}}
	if !reflect.DeepEqual(routes, want) {
		t.Errorf("default routes %+v, want %+v", routes, want)
	}
}

func TestStatic(t *testing.T) {
	ns := newNetns(t, "static")
	ip(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ip(t, "-n", ns, "link", "set", "eth1", "up")
	addr, gw := netip.MustParsePrefix("10.0.2.15/24"), netip.MustParseAddr("10.0.2.2")
	err := inNetns(ns, func() error {
		return errors.Join(
			Up("lo"),
			WaitLink(context.Background(), "eth0"),
			Up("eth0"),
			AddrAdd("eth0", addr),
			RouteAddDefault("eth0", gw),
			// Applying the same configuration again changes nothing.
			AddrAdd("eth0", addr),
			RouteAddDefault("eth0", gw),
		)
	})
	if err != nil {
		t.Fatal(err)
	}
	checkApplied(t, ns, "eth0", addr, "10.0.2.255", gw)
	if out := ip(t, "-n", ns, "-j", "link", "show", "lo"); !strings.Contains(string(out), `"UP"`) {
		t.Errorf("lo is not up: %s", out)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		name string
		run  func() error
		want string
		is   error
	}{
		{"up a missing link", func() error { return Up("nosuch0") }, "set link nosuch0 up", unix.ENODEV},
		{"address on a missing link", func() error { return AddrAdd("nosuch0", addr) }, "add address 10.0.2.15/24 to nosuch0", unix.ENODEV},
		{"invalid prefix", func() error { return AddrAdd("eth0", netip.Prefix{}) }, "add address invalid Prefix to eth0: invalid prefix", nil},
		{"unreachable gateway", func() error { return RouteAddDefault("eth0", netip.MustParseAddr("192.0.2.1")) },
			"add default route via 192.0.2.1 dev eth0", unix.ENETUNREACH},
		{"name too long", func() error { return Up("a-name-longer-than-15") }, "want 1 to 15 bytes", nil},
		{"wait cancelled", func() error { return WaitLink(cancelled, "nosuch0") }, "wait for link nosuch0", context.Canceled},
		{"dhcp on a missing link", func() error { _, err := DHCP(cancelled, "nosuch0", ""); return err }, "dhcp on nosuch0", unix.ENODEV},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := inNetns(ns, c.run)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Errorf("error %v, want one containing %q and wrapping %v", err, c.want, c.is)
			}
		})
	}
}

// TestDHCP runs the client against a server that broadcasts its replies
// and against one that unicasts them to the offered address, as ISC
// dhcpd and dnsmasq do when the client does not ask for broadcast: only a
// packet socket sees those before the address is configured.
func TestDHCP(t *testing.T) {
	for _, unicast := range []bool{false, true} {
		t.Run(fmt.Sprintf("unicast=%v", unicast), func(t *testing.T) { testDHCP(t, unicast) })
	}
}

func testDHCP(t *testing.T, unicast bool) {
	srvNS, cliNS := newNetns(t, "server"), newNetns(t, "client")
	ip(t, "-n", srvNS, "link", "add", "vs0", "type", "veth", "peer", "name", "eth0", "netns", cliNS)
	ip(t, "-n", srvNS, "addr", "add", "192.0.2.1/24", "dev", "vs0")
	ip(t, "-n", srvNS, "link", "set", "vs0", "up")

	srv := &testServer{addr: [4]byte{192, 0, 2, 1}, offer: [4]byte{192, 0, 2, 15}}
	if unicast {
		// What a server does before it unicasts to an address that
		// cannot answer ARP yet.
		var links []struct{ Address string }
		if err := json.Unmarshal(ip(t, "-n", cliNS, "-j", "link", "show", "eth0"), &links); err != nil || len(links) != 1 {
			t.Fatalf("client MAC: %v %v", links, err)
		}
		ip(t, "-n", srvNS, "neigh", "add", "192.0.2.15", "lladdr", links[0].Address, "dev", "vs0")
		srv.to = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 15), Port: clientPort}
	}
	if err := inNetns(srvNS, func() error { return srv.listen("vs0") }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.close)
	go srv.serve()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var lease Lease
	err := inNetns(cliNS, func() error {
		if err := errors.Join(Up("lo"), WaitLink(ctx, "eth0"), Up("eth0")); err != nil {
			return err
		}
		var err error
		if lease, err = DHCP(ctx, "eth0", "guest1"); err != nil {
			return err
		}
		return lease.Apply("eth0")
	})
	if err != nil {
		t.Fatal(err)
	}
	want := Lease{
		Addr:     netip.MustParsePrefix("192.0.2.15/24"),
		Router:   netip.MustParseAddr("192.0.2.1"),
		DNS:      []netip.Addr{netip.MustParseAddr("192.0.2.53"), netip.MustParseAddr("192.0.2.54")},
		Domain:   "example.test",
		Server:   netip.MustParseAddr("192.0.2.1"),
		Duration: time.Hour,
	}
	if !reflect.DeepEqual(lease, want) {
		t.Errorf("lease %+v\nwant  %+v", lease, want)
	}
	if got := srv.log(); !reflect.DeepEqual(got, []string{"DISCOVER guest1", "REQUEST guest1 192.0.2.15"}) {
		t.Errorf("server saw %q", got)
	}
	checkApplied(t, cliNS, "eth0", want.Addr, "192.0.2.255", want.Router)
}

// TestDHCPNoServer checks that the client gives up when its context ends.
func TestDHCPNoServer(t *testing.T) {
	ns := newNetns(t, "lonely")
	ip(t, "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1")
	ip(t, "-n", ns, "link", "set", "eth1", "up")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := inNetns(ns, func() error {
		if err := Up("eth0"); err != nil {
			return err
		}
		_, err := DHCP(ctx, "eth0", "")
		return err
	})
	t.Log(err)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "dhcp on eth0: discover: ") {
		t.Errorf("error %v, want dhcp on eth0: discover: ... context deadline exceeded", err)
	}
}
