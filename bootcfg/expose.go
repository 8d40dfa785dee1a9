package bootcfg

import (
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"

	"github.com/c2vm/c2vm/bootcfg/plan"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Exposed reads the image's EXPOSEd ports (ExposedPorts keys, validated by
// plan.ParsePort), sorted by number then protocol, without duplicates. The
// warnings name keys that were read in another spelling ("80" and
// "80/tcp" are one port, "53/UDP" is 53/udp).
//
// A key that does not parse refuses the image rather than being dropped
// with a warning: the ports are published by default, and an appliance
// converted in a pipeline would otherwise ship without the port its author
// meant to serve, with only a log line saying so; a key such as
// "8080/tcp;touch /tmp/x" is also a sign the image was made to attack
// whoever reads its config. The user can fix the image (or its EXPOSE).
func Exposed(cfg ocispec.ImageConfig) ([]plan.Port, []string, error) {
	keys := make([]string, 0, len(cfg.ExposedPorts))
	for k := range cfg.ExposedPorts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[plan.Port]bool{}
	var ports []plan.Port
	var warnings []string
	for _, k := range keys {
		p, err := plan.ParsePort(k)
		if err != nil {
			return nil, nil, fmt.Errorf("image config: %w", err)
		}
		if k != p.String() {
			warnings = append(warnings, fmt.Sprintf("exposed port %q read as %s", k, p))
		}
		if !seen[p] {
			seen[p] = true
			ports = append(ports, p)
		}
	}
	sort.Slice(ports, func(i, j int) bool {
		if ports[i].Port != ports[j].Port {
			return ports[i].Port < ports[j].Port
		}
		return ports[i].Proto < ports[j].Proto
	})
	return ports, warnings, nil
}

// ErrBadVolume is wrapped by the errors of CleanVolume and ValidateVolume.
var ErrBadVolume = errors.New("unusable volume path")

// maxVolumePath bounds a VOLUME path (PATH_MAX less its NUL).
const maxVolumePath = 4095

// CleanVolume checks an image VOLUME path (or --volume) and returns it clean:
// absolute, no "." or ".." component, no empty one but a trailing slash
// (which Dockerfiles write, "VOLUME /data/", and which is dropped), not
// "/" itself, and only letters, digits and . _ - + @ between the slashes.
// The path comes from the image and reaches the boot plan, the data
// disk's name and label, fstab-like mount options and hypervisor configs:
// refusing quotes, white space, shell metacharacters (;|&$`\*?!#~ and
// brackets), markup (<>&) and separators of QEMU and xl options (,=:) is
// what keeps every one of them inert. Docker allows more (a space, say);
// such an image is refused with an error naming the path. The kernel's
// own trees (/proc, /sys, /dev) are refused too.
//
// A clean absolute path is inside the root by construction; symlinks in
// the image along it are for the caller to resolve inside the root, as
// containerd does, before seeding the disk.
func CleanVolume(p string) (string, error) {
	if err := checkVolume(p); err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrBadVolume, p, err)
	}
	return strings.TrimSuffix(p, "/"), nil
}

// ValidateVolume reports whether CleanVolume accepts p.
func ValidateVolume(p string) error {
	_, err := CleanVolume(p)
	return err
}

func checkVolume(p string) error {
	switch {
	case len(p) > maxVolumePath:
		return fmt.Errorf("longer than %d bytes", maxVolumePath)
	case !strings.HasPrefix(p, "/"):
		return errors.New("not absolute")
	case p == "/":
		return errors.New("the root itself cannot be a volume")
	}
	if i := strings.IndexFunc(p, func(r rune) bool { return !volumeRune(r) }); i >= 0 {
		return fmt.Errorf("character %q is not allowed (letters, digits and ._-+@ only)", p[i:i+1])
	}
	trimmed := strings.TrimSuffix(p, "/")
	if path.Clean(trimmed) != trimmed {
		return errors.New(`not clean (empty, "." or ".." components)`)
	}
	for _, sys := range []string{"/proc", "/sys", "/dev"} {
		if trimmed == sys || strings.HasPrefix(trimmed, sys+"/") {
			return errors.New("inside " + sys + ", which the kernel provides")
		}
	}
	return nil
}

func volumeRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+@", r)
}

// Forwards merges published ports the way convert and run apply them:
// base (the converted forwards, for run), then every exposed port on the
// same host port of plan.DefaultHostIP unless a forward of it is there,
// then explicit ones (--publish, -p), which replace any earlier forward
// of the same guest port and protocol ("-p 18080:8080" moves the default
// 8080:8080 rather than adding to it). An exposed port whose host port
// another forward takes is not published by default. A guest port published on two
// host ports by explicit forwards is allowed, as Docker allows it; one
// host port taken twice is an error.
func Forwards(base []plan.Forward, exposed []plan.Port, explicit []plan.Forward) ([]plan.Forward, error) {
	replaced := map[plan.Port]bool{}
	for _, f := range explicit {
		replaced[guestPort(f)] = true
	}
	var out []plan.Forward
	have := map[plan.Port]bool{}
	for _, f := range base {
		if !replaced[guestPort(f)] {
			out = append(out, f)
			have[guestPort(f)] = true
		}
	}
	for _, p := range exposed {
		f := plan.Forward{HostIP: plan.DefaultHostIP, HostPort: p.Port, GuestPort: p.Port, Proto: p.Proto}
		if !replaced[p] && !have[p] && !takes(out, f) && !takes(explicit, f) {
			out = append(out, f)
			have[p] = true
		}
	}
	out = append(out, explicit...)
	return out, checkHostPorts(out)
}

// takes reports whether a forward in fs listens where f would.
func takes(fs []plan.Forward, f plan.Forward) bool {
	for _, g := range fs {
		if clash(f, g) {
			return true
		}
	}
	return false
}

// clash: one host port, the same address or either on every address
// (0.0.0.0, ::).
func clash(f, g plan.Forward) bool {
	return f.HostPort == g.HostPort && f.Proto == g.Proto && (f.HostIP == g.HostIP || unspecified(f.HostIP) || unspecified(g.HostIP))
}

func guestPort(f plan.Forward) plan.Port { return plan.Port{Port: f.GuestPort, Proto: f.Proto} }

// checkHostPorts refuses two forwards listening on one host port.
func checkHostPorts(fs []plan.Forward) error {
	for i, f := range fs {
		if err := f.Check(); err != nil {
			return err
		}
		for _, g := range fs[:i] {
			if clash(f, g) {
				return fmt.Errorf("host port %d/%s is published twice (%s and %s)", f.HostPort, f.Proto, g, f)
			}
		}
	}
	return nil
}

func unspecified(ip string) bool { return ip == "0.0.0.0" || ip == "::" }
