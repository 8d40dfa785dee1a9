package guest

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/c2vm/c2vm/bootcfg/plan"
	"github.com/c2vm/c2vm/guest/netup"
)

// network runs a Network step: loopback, then the interface by the plan's
// mode (or c2vm.net=), then the files naming the resolver and the host.
func (s *initState) network(n *plan.Network) error {
	if err := netup.Up("lo"); err != nil {
		return err
	}
	mode := n.Mode
	if s.args.Net != "" {
		mode = s.args.Net
	}
	if mode == plan.NetNone {
		return s.netFiles(n, netip.Addr{}, nil, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n.WaitSeconds)*time.Second)
	defer cancel()
	if err := netup.WaitLink(ctx, n.Interface); err != nil {
		// A VM without a network card: loopback only, and the files.
		s.netFiles(n, netip.Addr{}, nil, "")
		return fmt.Errorf("no %s (a VM without a network card?): %w", n.Interface, err)
	}
	if err := netup.Up(n.Interface); err != nil {
		return err
	}
	if mode == plan.NetDHCP {
		return s.dhcp(n)
	}
	prefix, err := netip.ParsePrefix(n.Address)
	if err != nil {
		return fmt.Errorf("address %q: %w", n.Address, err)
	}
	gw, err := netip.ParseAddr(n.Gateway)
	if err != nil {
		return fmt.Errorf("gateway %q: %w", n.Gateway, err)
	}
	if err := netup.AddrAdd(n.Interface, prefix); err != nil {
		return err
	}
	if err := netup.RouteAddDefault(n.Interface, gw); err != nil {
		return err
	}
	var dns []netip.Addr
	for _, d := range n.DNS {
		if a, err := netip.ParseAddr(d); err == nil {
			dns = append(dns, a)
		}
	}
	return s.netFiles(n, prefix.Addr(), dns, "")
}

// dhcpTimeout bounds the lease: a bridge without a DHCP server must not
// keep the container from starting.
const dhcpTimeout = 30 * time.Second

func (s *initState) dhcp(n *plan.Network) error {
	ctx, cancel := context.WithTimeout(context.Background(), dhcpTimeout)
	defer cancel()
	l, err := netup.DHCP(ctx, n.Interface, n.Hostname)
	if err != nil {
		s.netFiles(n, netip.Addr{}, nil, "")
		return err
	}
	if err := l.Apply(n.Interface); err != nil {
		return err
	}
	s.logf("%s: leased %s via %s, DNS %v", n.Interface, l.Addr, l.Router, l.DNS)
	return s.netFiles(n, l.Addr.Addr(), l.DNS, l.Domain)
}

// netFiles writes /etc/hosts and /etc/resolv.conf unless the image has
// them; with no DNS server known, resolv.conf is left alone.
func (s *initState) netFiles(n *plan.Network, addr netip.Addr, dns []netip.Addr, domain string) error {
	files := []*plan.WriteFile{{Path: "/etc/hosts", Data: netup.Hosts(n.Hostname, addr), Mode: 0o644, IfMissing: true}}
	if len(dns) > 0 {
		files = append(files, &plan.WriteFile{Path: "/etc/resolv.conf", Data: netup.ResolvConf(dns, domain), Mode: 0o644, IfMissing: true})
	}
	for _, f := range files {
		if err := writeFile(f); err != nil {
			// A scratch image has no /etc: nothing to resolve with anyway.
			s.logf("%s: %v (skipped)", f, err)
		}
	}
	return nil
}
