package plan

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Port is one of the image's EXPOSEd ports, validated (1–65535, tcp or
// udp): image config keys are untrusted and end up in hypervisor configs.
type Port struct {
	Port  uint16 `json:"port"`
	Proto string `json:"proto"` // "tcp" or "udp"
}

// Forward publishes a guest port on the host, as Docker's
// -p [IP:]HOST:GUEST[/proto]: user-mode networking's hostfwd.
type Forward struct {
	HostIP    string `json:"hostIP"` // "127.0.0.1" unless given
	HostPort  uint16 `json:"hostPort"`
	GuestPort uint16 `json:"guestPort"`
	Proto     string `json:"proto"` // "tcp" or "udp"
}

// DefaultHostIP is where a forward listens unless an address is given:
// the host's loopback, so that a converted appliance is not reachable
// from the network by default (Docker binds 0.0.0.0; c2vm is stricter).
const DefaultHostIP = "127.0.0.1"

// ParsePort reads an image config's ExposedPorts key: PORT or PORT/PROTO
// with 1 ≤ PORT ≤ 65535 and PROTO tcp (the default) or udp, as the OCI
// image spec defines the key ("port/tcp", "port/udp", "port"). Nothing
// else passes — no ranges, spaces, separators or other protocols — since
// the key comes from the image and its numbers end up in QEMU options and
// shell scripts.
func ParsePort(key string) (Port, error) {
	p, err := parsePort(strings.Cut(key, "/"))
	if err != nil {
		return Port{}, fmt.Errorf("exposed port %q: %w", key, err)
	}
	return p, nil
}

// String is the key form: "8080/tcp".
func (p Port) String() string { return fmt.Sprintf("%d/%s", p.Port, p.Proto) }

// parsePort checks a port number and the protocol after its slash, if
// any (none = tcp). Upper case is taken and lowered, as Docker does.
func parsePort(port, proto string, slash bool) (Port, error) {
	n, err := portNumber(port)
	if err != nil {
		return Port{}, err
	}
	switch proto = strings.ToLower(proto); {
	case !slash:
		proto = "tcp"
	case proto == "tcp", proto == "udp":
	default:
		// sctp is Docker's third protocol; QEMU's user-mode networking
		// forwards only tcp and udp.
		return Port{}, fmt.Errorf("protocol %q is not tcp or udp", proto)
	}
	return Port{Port: n, Proto: proto}, nil
}

// portNumber reads 1–65535 in decimal digits only: strconv would also take
// a sign, and a range ("8000-8010") is not supported.
func portNumber(s string) (uint16, error) {
	if lo, hi, ok := strings.Cut(s, "-"); ok && isDigits(lo) && isDigits(hi) {
		return 0, fmt.Errorf("port ranges (%s) are not supported: give each port", s)
	}
	if !isDigits(s) {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("port %s is out of range (1–65535)", s)
	}
	return uint16(n), nil
}

// ParseForward reads Docker's -p [IP:]HOST:GUEST[/tcp|udp]: IP is an IPv4
// address or an IPv6 one, in brackets or not (Docker's nat.ParsePortSpec
// takes both: the last two colons separate the ports); without one the
// host side listens on DefaultHostIP. The host port is required: c2vm
// does not pick a free one.
func ParseForward(s string) (Forward, error) {
	f, err := parseForward(s)
	if err != nil {
		return Forward{}, fmt.Errorf("port mapping %q: %w", s, err)
	}
	return f, nil
}

func parseForward(s string) (Forward, error) {
	spec, proto, slash := strings.Cut(s, "/")
	i := strings.LastIndex(spec, ":")
	if i < 0 {
		return Forward{}, fmt.Errorf("want [IP:]HOST:GUEST[/tcp|udp]")
	}
	ip, host, guest := "", spec[:i], spec[i+1:]
	if j := strings.LastIndex(host, ":"); j >= 0 {
		ip, host = host[:j], host[j+1:]
	}
	g, err := parsePort(guest, proto, slash)
	if err != nil {
		return Forward{}, fmt.Errorf("guest %w", err)
	}
	if host == "" {
		return Forward{}, fmt.Errorf("no host port: c2vm does not choose one, give [IP:]HOST:GUEST")
	}
	h, err := portNumber(host)
	if err != nil {
		return Forward{}, fmt.Errorf("host %w", err)
	}
	addr, err := hostIP(ip)
	if err != nil {
		return Forward{}, err
	}
	return Forward{HostIP: addr, HostPort: h, GuestPort: g.Port, Proto: g.Proto}, nil
}

// hostIP reads the address part: "" is DefaultHostIP, "[v6]" or "v6" an
// IPv6 address. Zones ("fe80::1%eth0") are refused: they would carry an
// interface name into QEMU's options.
func hostIP(s string) (string, error) {
	if s == "" {
		return DefaultHostIP, nil
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return "", fmt.Errorf("host address %q is not an IPv4 or IPv6 address", s)
	}
	return a.String(), nil
}

// String is the -p form: "127.0.0.1:8080:80/tcp", "[::1]:8080:80/tcp".
func (f Forward) String() string {
	ip := f.HostIP
	if strings.Contains(ip, ":") {
		ip = "[" + ip + "]"
	}
	return fmt.Sprintf("%s:%d:%d/%s", ip, f.HostPort, f.GuestPort, f.Proto)
}

// Check validates a Forward built in code or read from a file, as
// ParseForward would have.
func (f Forward) Check() error {
	g, err := ParseForward(f.String())
	if err != nil {
		return err
	}
	if g != f {
		return fmt.Errorf("port mapping %+v: not in canonical form (%+v)", f, g)
	}
	return nil
}

func isDigits(s string) bool { return s != "" && strings.Trim(s, "0123456789") == "" }
