package netup

import (
	"net/netip"
	"testing"
)

func TestResolvConf(t *testing.T) {
	a, b := netip.MustParseAddr("10.0.2.3"), netip.MustParseAddr("2001:db8::53")
	for _, c := range []struct {
		name   string
		dns    []netip.Addr
		search string
		want   string
	}{
		{"user-mode", []netip.Addr{a}, "", "nameserver 10.0.2.3\n"},
		{"search and two servers", []netip.Addr{a, b}, "example.test", "search example.test\nnameserver 10.0.2.3\nnameserver 2001:db8::53\n"},
		{"nothing", nil, "", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ResolvConf(c.dns, c.search); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}

func TestHosts(t *testing.T) {
	const local = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n"
	for _, c := range []struct {
		name, hostname string
		addr           netip.Addr
		want           string
	}{
		{"no hostname", "", netip.MustParseAddr("10.0.2.15"), local},
		{"hostname on the guest address", "web", netip.MustParseAddr("10.0.2.15"), local + "10.0.2.15\tweb\n"},
		{"hostname without an address", "web", netip.Addr{}, local + "127.0.1.1\tweb\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Hosts(c.hostname, c.addr); got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
		})
	}
}
