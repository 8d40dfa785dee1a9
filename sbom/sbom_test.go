package sbom

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

const dpkgStatus = `Package: nginx-light
Status: install ok installed
Priority: optional
Maintainer: Debian Nginx Maintainers <pkg-nginx-maintainers@alioth-lists.debian.net>
Architecture: amd64
Source: nginx
Version: 1.22.1-9
Description: nginx web/proxy server (basic version)
 Nginx ("engine X") is a high-performance web and reverse proxy server

Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4

Package: gone
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: perl-base
Status: install ok installed
Architecture: amd64
Source: perl (5.36.0-7+deb12u1)
Version: 1:5.36.0-7+deb12u1
`

const debianOSRelease = `PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
ID=debian
`

func TestDpkg(t *testing.T) {
	fsys := fstest.MapFS{
		"var/lib/dpkg/status": {Data: []byte(dpkgStatus)},
		"etc/os-release":      {Data: []byte(debianOSRelease)},
	}
	inv, err := Read(fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12",
		"pkg:deb/debian/nginx-light@1.22.1-9?arch=amd64&distro=debian-12",
		"pkg:deb/debian/perl-base@1%3A5.36.0-7%2Bdeb12u1?arch=amd64&distro=debian-12",
	}
	if got := purls(inv); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("purls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if p := inv.Packages[1]; p.Source != "nginx" || !strings.HasPrefix(p.Supplier, "Debian Nginx") {
		t.Errorf("nginx-light: %+v", p)
	}
	if p := inv.Packages[2]; p.Source != "perl" {
		t.Errorf("perl-base's source %q, want perl (its version cut)", p.Source)
	}
}

func TestDistrolessStatusD(t *testing.T) {
	fsys := fstest.MapFS{
		"var/lib/dpkg/status.d/base-files":         {Data: []byte("Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: arm64\n")},
		"var/lib/dpkg/status.d/base-files.md5sums": {Data: []byte("0123 etc/debian_version\n")},
		"var/lib/dpkg/status.d/tzdata":             {Data: []byte("Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n")},
		"etc/os-release":                           {Data: []byte(debianOSRelease)},
	}
	inv, err := Read(fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(inv); got != "base-files 12.4+deb12u5 arm64, tzdata 2024a-0+deb12u1 all" {
		t.Errorf("packages: %s", got)
	}
}

// apkInstalled is the shape apk-tools 2 writes (an Alpine 3.19 root's
// lib/apk/db/installed, two packages, file lists cut short).
const apkInstalled = `C:Q1bCYAOcvi/3ueCL6NtBWAUpnUjRM=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407489
I:663552
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Timo Teräs <timo.teras@iki.fi>
t:1705409046
c:a6ef17d1e7e7da3e5daa2a1a6e8e3b1b4e1e1fc1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1rAEMUHC6VCSnsSj8AbQlXQ6nbgk=

C:Q1Kt5qxl2R9CuPpNRmsPtH/X7pkfk=
P:ssl_client
V:1.36.1-r15
A:x86_64
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
F:usr/bin
R:ssl_client
`

func TestApk(t *testing.T) {
	fsys := fstest.MapFS{
		"lib/apk/db/installed": {Data: []byte(apkInstalled)},
		"etc/os-release":       {Data: []byte("ID=alpine\nVERSION_ID=3.19.1\n")},
	}
	inv, err := Read(fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := "pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=alpine-3.19.1\n" +
		"pkg:apk/alpine/ssl_client@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1"
	if got := strings.Join(purls(inv), "\n"); got != want {
		t.Errorf("purls:\n%s\nwant:\n%s", got, want)
	}
	if p := inv.Packages[1]; p.License != "GPL-2.0-only" || p.Source != "busybox" {
		t.Errorf("ssl_client: %+v", p)
	}
}

func TestBadDatabases(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"dpkg without Version": {"var/lib/dpkg/status": {Data: []byte("Package: x\nStatus: install ok installed\n")}},
		"apk without P":        {"lib/apk/db/installed": {Data: []byte("V:1\nA:x86_64\n")}},
		"rpm of no format":     {"var/lib/rpm/Packages": {Data: []byte("not a database at all, not at all, not at all, not at all.")}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Read(fsys, Options{TempDir: t.TempDir()}); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestEmptyRoot(t *testing.T) {
	inv, err := Read(fstest.MapFS{}, Options{})
	if err != nil || len(inv.Packages) != 0 {
		t.Errorf("Read of an empty root = %+v, %v", inv, err)
	}
}

func TestSPDX(t *testing.T) {
	doc := Document{Name: "oci:app:latest", ImageDigest: "sha256:" + strings.Repeat("ab", 32),
		Distro:   Distro{ID: "debian", VersionID: "12"},
		Packages: []Package{{Type: "deb", Name: "nginx-light", Version: "1.22.1-9", Arch: "amd64"}, {Type: "rpm", Name: "bash", Version: "5.2-1", License: "GPLv3+"}, {Type: "apk", Name: "musl", Version: "1.2.4-r4", License: "MIT"}},
		Components: []Component{{Name: "linux-image-6.1.0-57-cloud-amd64", Version: "6.1.192-3", SHA256: strings.Repeat("cd", 32),
			PURL: "pkg:deb/debian/linux-image-6.1.0-57-cloud-amd64@6.1.192-3?arch=amd64", Purpose: "OPERATING-SYSTEM"}},
		Created: time.Unix(1700000000, 0), Tool: "c2vm-test"}
	var a, b bytes.Buffer
	if err := doc.WriteSPDX(&a); err != nil {
		t.Fatal(err)
	}
	if err := doc.WriteSPDX(&b); err != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatalf("two writes differ (%v)", err)
	}
	var got spdxDoc
	if err := json.Unmarshal(a.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.SPDXVersion != "SPDX-2.3" || got.CreationInfo.Created != "2023-11-14T22:13:20Z" || len(got.Packages) != 5 || len(got.Relationships) != 5 {
		t.Fatalf("document: %+v", got)
	}
	byName := map[string]spdxPackage{}
	for _, p := range got.Packages {
		byName[p.Name] = p
	}
	if p := byName["bash"]; p.LicenseDeclared != "NOASSERTION" || p.LicenseComments != "rpm database: GPLv3+" {
		t.Errorf("an rpm license that is no SPDX expression: %+v", p)
	}
	if p := byName["musl"]; p.LicenseDeclared != "MIT" {
		t.Errorf("musl's license %q", p.LicenseDeclared)
	}
	if p := byName["linux-image-6.1.0-57-cloud-amd64"]; len(p.Checksums) != 1 || p.Checksums[0].Value != strings.Repeat("cd", 32) {
		t.Errorf("kernel component: %+v", p)
	}
	doc.Packages[0].Version = "1.22.1-10"
	var c bytes.Buffer
	doc.WriteSPDX(&c)
	var other spdxDoc
	json.Unmarshal(c.Bytes(), &other)
	if other.DocumentNamespace == got.DocumentNamespace {
		t.Error("another document has the same namespace")
	}
}

func purls(inv *Inventory) []string {
	var out []string
	for _, p := range inv.Packages {
		out = append(out, p.PURL(inv.Distro))
	}
	return out
}

func names(inv *Inventory) string {
	var out []string
	for _, p := range inv.Packages {
		out = append(out, p.Name+" "+p.Version+" "+p.Arch)
	}
	return strings.Join(out, ", ")
}
