package plan

import (
	"fmt"
	"strings"
	"testing"
)

// TestParsePort covers image EXPOSE keys. The number cases port Docker's
// nat.TestParsePort (github.com/docker/go-connections nat/nat_test.go),
// except that "" and "0" are errors here: Docker reads them as "no port",
// an image key must name one.
func TestParsePort(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want Port   // zero: an error
		err  string // in the error
	}{
		{key: "8080", want: Port{8080, "tcp"}},
		{key: "8080/tcp", want: Port{8080, "tcp"}},
		{key: "53/udp", want: Port{53, "udp"}},
		{key: "53/UDP", want: Port{53, "udp"}}, // Docker lowers the protocol
		{key: "65535", want: Port{65535, "tcp"}},
		{key: "1", want: Port{1, "tcp"}},
		{key: "0123", want: Port{123, "tcp"}}, // Docker's "octal value" case: read as decimal
		{key: "asdf", err: "not a number"},
		{key: "1asdf", err: "not a number"},
		{key: "", err: "not a number"},
		{key: "0", err: "out of range"},
		{key: "-1", err: "not a number"},
		{key: "65536", err: "out of range"},
		{key: "99999999999999999999", err: "out of range"},
		{key: "+80", err: "not a number"},
		{key: "8080/sctp", err: `protocol "sctp"`},
		{key: "8080/", err: `protocol ""`},
		{key: "/tcp", err: "not a number"},
		{key: "8000-8010/tcp", err: "port ranges (8000-8010) are not supported"},
		{key: " 8080", err: "not a number"},
		{key: "8080 ", err: "not a number"},
		{key: "8080/tcp ", err: "protocol"},
		{key: "8080/tcp/udp", err: "protocol"},
		// The hostile keys: a shell command, a QEMU option.
		{key: "8080/tcp;touch /tmp/x", err: "protocol"},
		{key: "8080,hostfwd=tcp::22-:22", err: "not a number"},
		{key: "8080\n", err: "not a number"},
		{key: "80'\"<x>", err: "not a number"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			got, err := ParsePort(tc.key)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), fmt.Sprintf("%q", tc.key)) {
					t.Fatalf("ParsePort(%q) = %v, %v; want an error naming the key and saying %q", tc.key, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParsePort(%q) = %v, %v; want %v", tc.key, got, err, tc.want)
			}
			if tc.want.String() != strings.ToLower(tc.key) && tc.want.String() != tc.key+"/tcp" && tc.key != "0123" {
				t.Errorf("String() = %q", tc.want.String())
			}
		})
	}
}

// TestParseForward covers -p. Cases marked "docker" port
// nat.ParsePortSpec's tests (nat/nat_test.go): TestParsePortSpecs,
// TestPartPortSpecIPV6, TestParseNetworkOpts*, with these differences:
// a host port is required (Docker picks a free one; QEMU's hostfwd needs
// one), ranges are refused (TestParsePortSpecFull,
// TestParsePortSpecsWithRange: skipped, one forward per -p), sctp is
// refused (user-mode networking has none), and a mapping without an
// address binds 127.0.0.1, not every interface.
func TestParseForward(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Forward
		err  string
	}{
		{spec: "18080:8080", want: Forward{"127.0.0.1", 18080, 8080, "tcp"}},
		{spec: "18080:8080/udp", want: Forward{"127.0.0.1", 18080, 8080, "udp"}},
		{spec: "1234:1234/tcp", want: Forward{"127.0.0.1", 1234, 1234, "tcp"}},           // docker
		{spec: "2345:2345/udp", want: Forward{"127.0.0.1", 2345, 2345, "udp"}},           // docker
		{spec: "0.0.0.0:1234:1234/tcp", want: Forward{"0.0.0.0", 1234, 1234, "tcp"}},     // docker
		{spec: "0.0.0.0:2345:2345/udp", want: Forward{"0.0.0.0", 2345, 2345, "udp"}},     // docker
		{spec: "192.168.1.100:8080:80", want: Forward{"192.168.1.100", 8080, 80, "tcp"}}, // docker
		{spec: "[::1]:80:80", want: Forward{"::1", 80, 80, "tcp"}},                       // docker IPv6
		{spec: "::1:80:80", want: Forward{"::1", 80, 80, "tcp"}},                         // docker IPv6 without brackets
		{spec: "[2001:4860:0:2001::68]:8080:80", want: Forward{"2001:4860:0:2001::68", 8080, 80, "tcp"}},
		{spec: "127.0.0.1:18080:8080/TCP", want: Forward{"127.0.0.1", 18080, 8080, "tcp"}},
		{spec: "", err: "want [IP:]HOST:GUEST"},                                                     // docker: no port specified
		{spec: "8080", err: "want [IP:]HOST:GUEST"},                                                 // docker: expose only
		{spec: "1234/tcp", err: "want [IP:]HOST:GUEST"},                                             // docker ParsePortSpecs
		{spec: "0.0.0.0:1234-1235:/tcp", err: "not a number"},                                       // docker: empty container port
		{spec: "0.0.0.0:1234-1235:", err: "not a number"},                                           // docker
		{spec: "0.0.0.0:1234-1235:3333-3334/tcp", err: "port ranges (3333-3334) are not supported"}, // docker (full)
		{spec: "1234-1236:1234-1236/tcp", err: "not supported"},                                     // docker (with range)
		{spec: "3456:3456/sctp", err: `protocol "sctp"`},                                            // docker
		{spec: "localhost:1234:1234/tcp", err: "not an IPv4 or IPv6 address"},                       // docker
		{spec: "192.168.1.100:-1:-1", err: "not a number"},                                          // docker: negative ports
		{spec: "192.168.1.100::6000/udp", err: "no host port"},                                      // docker: random host port
		{spec: "[2001:4860:0:2001::68]::333", err: "no host port"},                                  // docker IPv6
		{spec: "2001:4860:0:2001::68::333", err: "no host port"},                                    // docker IPv6
		{spec: "::::80", err: "no host port"},                                                       // docker IPv6
		{spec: ":8080", err: "no host port"},
		{spec: "0:8080", err: "out of range"},
		{spec: "8080:0", err: "out of range"},
		{spec: "70000:80", err: "out of range"},
		{spec: "[fe80::1%eth0]:80:80", err: "not an IPv4 or IPv6 address"},
		{spec: "1.2.3:80:80", err: "not an IPv4 or IPv6 address"},
		{spec: "127.0.0.1,hostfwd=tcp::22:80:80", err: "not an IPv4 or IPv6 address"},
		{spec: "80:80,hostfwd=tcp::22-:22", err: "not a number"},
		{spec: "80:80/tcp;reboot", err: "protocol"},
		{spec: "80:80/tcp/udp", err: "protocol"},
		{spec: " 80:80", err: "not a number"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseForward(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("ParseForward(%q) = %v, %v; want one line saying %q", tc.spec, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseForward(%q) = %+v, %v; want %+v", tc.spec, got, err, tc.want)
			}
			if err := got.Check(); err != nil {
				t.Errorf("Check: %v", err)
			}
			if back, err := ParseForward(got.String()); err != nil || back != got {
				t.Errorf("%q does not read back: %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestForwardCheck(t *testing.T) {
	for _, f := range []Forward{
		{},
		{HostIP: "127.0.0.1", HostPort: 80, GuestPort: 80},                   // no proto
		{HostIP: "127.0.0.1", HostPort: 80, GuestPort: 80, Proto: "TCP"},     // not lowered
		{HostIP: "127.000.0.1", HostPort: 80, GuestPort: 80, Proto: "tcp"},   // not canonical
		{HostIP: "::0001", HostPort: 80, GuestPort: 80, Proto: "tcp"},        // not canonical
		{HostIP: "127.0.0.1,x", HostPort: 80, GuestPort: 80, Proto: "tcp"},   // an option
		{HostIP: "127.0.0.1", HostPort: 80, GuestPort: 80, Proto: "tcp,x=y"}, // an option
		{HostIP: "127.0.0.1", HostPort: 0, GuestPort: 80, Proto: "tcp"},      // no port
		{HostIP: "", HostPort: 80, GuestPort: 80, Proto: "tcp"},              // no address
	} {
		t.Run(f.String(), func(t *testing.T) {
			if err := f.Check(); err == nil {
				t.Errorf("Check(%+v) passed", f)
			}
		})
	}
}

// FuzzParseForward: whatever parses prints back to itself and holds only
// the characters of addresses, numbers and the protocol — nothing that
// could end a QEMU option or a shell word.
func FuzzParseForward(f *testing.F) {
	for _, s := range []string{"18080:8080", "[::1]:80:80/udp", "0.0.0.0:1:65535/tcp", "80:80,hostfwd=tcp::22-:22"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fw, err := ParseForward(s)
		if err != nil {
			return
		}
		if back, err := ParseForward(fw.String()); err != nil || back != fw {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, fw, fw.String(), back, err)
		}
		if strings.Trim(fw.String(), "0123456789abcdef.:[]/tcpud") != "" {
			t.Fatalf("%q prints as %q", s, fw.String())
		}
	})
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"8080", "53/udp", "8080/tcp;touch /tmp/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			return
		}
		if back, err := ParsePort(p.String()); err != nil || back != p || strings.Trim(p.String(), "0123456789/tcpud") != "" {
			t.Fatalf("%q → %+v → %q → %+v, %v", s, p, p.String(), back, err)
		}
	})
}
