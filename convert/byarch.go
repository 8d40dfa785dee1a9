package convert

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/c2vm/c2vm/arch"
)

// ByArch names a source per VM architecture, by GOARCH: a kernel, an
// init binary or an EFI stub. The key AnyArch serves every architecture
// without one of its own; an empty ByArch is the default.
//
//	convert.Options{Kernel: convert.ByArch{"amd64": "a.deb", "arm64": "b.deb"}}
//	convert.Options{Kernel: convert.One("debian:bookworm")}
type ByArch map[string]string

// AnyArch is ByArch's key for every architecture.
const AnyArch = ""

// One is the ByArch of one source for every architecture ("": none).
func One(v string) ByArch {
	if v == "" {
		return nil
	}
	return ByArch{AnyArch: v}
}

// ParseByArch reads a flag's value: ARCH=PATH,... (arch names as
// arch.Lookup takes them) is one source per arch, anything else one
// source for every arch.
func ParseByArch(v string) ByArch {
	m := ByArch{}
	for _, e := range strings.Split(v, ",") {
		name, p, ok := strings.Cut(e, "=")
		a, err := arch.Lookup(name)
		if !ok || err != nil || p == "" {
			return One(v)
		}
		m[a.GOARCH] = p
	}
	return m
}

// For is goarch's source: its own, else AnyArch's, else "" (the
// default) when b names none; an error when b names other arches only.
func (b ByArch) For(flag, goarch string) (string, error) {
	if p, ok := b[goarch]; ok {
		return p, nil
	}
	if p, ok := b[AnyArch]; ok || len(b) == 0 {
		return p, nil
	}
	return "", fmt.Errorf("%s names no file for %s", flag, goarch)
}

// sorted is b's sources, sorted (one error, always the same).
func (b ByArch) sorted() []string { return slices.Sorted(maps.Values(b)) }
