package sbom

import (
	"net/url"
	"sort"
	"strings"
)

// PURL is the package's package URL (github.com/package-url/purl-spec):
// pkg:deb/debian/nginx-light@1.22.1-9?arch=amd64&distro=debian-12,
// pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1,
// pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40&epoch=1.
// The namespace is the distribution's os-release ID (apk: "alpine" when
// there is none).
func (p Package) PURL(d Distro) string {
	ns := d.ID
	if ns == "" && p.Type == "apk" {
		ns = "alpine"
	}
	version := p.Version
	q := map[string]string{"arch": p.Arch}
	if p.Type == "rpm" && p.Epoch != "" && p.Epoch != "0" {
		// rpm's purls carry the epoch as a qualifier, not in the version.
		version = strings.TrimPrefix(version, p.Epoch+":")
		q["epoch"] = p.Epoch
	}
	if d.ID != "" && d.VersionID != "" {
		q["distro"] = d.ID + "-" + d.VersionID
	}
	s := "pkg:" + p.Type + "/"
	if ns != "" {
		s += purlEscape(ns) + "/"
	}
	s += purlEscape(p.Name) + "@" + purlEscape(version)
	return s + qualifiers(q)
}

// qualifiers writes ?k=v&… sorted by key, empty values left out.
func qualifiers(q map[string]string) string {
	keys := make([]string, 0, len(q))
	for k, v := range q {
		if v != "" {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + purlEscape(q[k])
	}
	return "?" + strings.Join(parts, "&")
}

// purlEscape percent-encodes what a purl segment may not hold: the spec
// keeps letters, digits and ".-_~" and encodes the rest (':' in a Debian
// epoch becomes %3A, '+' %2B).
func purlEscape(s string) string {
	return strings.NewReplacer("+", "%2B", ":", "%3A").Replace(url.PathEscape(s))
}
