package netup

import (
	"net/netip"
	"strings"
)

// ResolvConf returns the content of /etc/resolv.conf (resolv.conf(5)) for
// the name servers dns and the search domain search (none when empty).
// glibc reads only the first three name servers (MAXNS); all are written
// for resolvers that read more.
func ResolvConf(dns []netip.Addr, search string) string {
	var b strings.Builder
	if search != "" {
		b.WriteString("search " + search + "\n")
	}
	for _, a := range dns {
		b.WriteString("nameserver " + a.String() + "\n")
	}
	return b.String()
}

// Hosts returns the content of /etc/hosts: Docker's localhost and IPv6
// lines (moby libnetwork/etchosts), then hostname on addr. Docker maps the
// hostname to the container's address; without one (addr invalid) it goes
// on 127.0.1.1, Debian's convention, so that it resolves offline.
func Hosts(hostname string, addr netip.Addr) string {
	s := "127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\n" +
		"ff00::0\tip6-mcastprefix\n" +
		"ff02::1\tip6-allnodes\n" +
		"ff02::2\tip6-allrouters\n"
	if hostname == "" {
		return s
	}
	if !addr.IsValid() {
		addr = netip.AddrFrom4([4]byte{127, 0, 1, 1})
	}
	return s + addr.String() + "\t" + hostname + "\n"
}
