package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// debianNginx is a debootstrap minbase of bookworm with nginx-light.
func debianNginx(t *testing.T) string {
	t.Helper()
	fixtures.NeedTools(t, "debootstrap", "umoci", "dpkg-query", "tar")
	return debootstrapTree(t, "debian-bookworm-minbase-nginx-light.tar", "nginx-light")
}

// spdxPackages reads an SPDX JSON document's packages: name, versionInfo
// and purl.
func spdxPackages(t *testing.T, p string) []struct{ Name, Version, PURL string } {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct {
			Name         string `json:"name"`
			VersionInfo  string `json:"versionInfo"`
			ExternalRefs []struct {
				Type    string `json:"referenceType"`
				Locator string `json:"referenceLocator"`
			} `json:"externalRefs"`
		} `json:"packages"`
	}
	if err := json.Unmarshal(b, &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" {
		t.Fatalf("%s: not SPDX 2.3 JSON (%v)", p, err)
	}
	var out []struct{ Name, Version, PURL string }
	for _, pk := range doc.Packages {
		purl := ""
		for _, r := range pk.ExternalRefs {
			if r.Type == "purl" {
				purl = r.Locator
			}
		}
		out = append(out, struct{ Name, Version, PURL string }{pk.Name, pk.VersionInfo, purl})
	}
	return out
}

// TestSBOMDebian: the SBOM of a real Debian root (debootstrap minbase +
// nginx-light) lists exactly what dpkg-query lists from the same
// database, with Debian purls.
func TestSBOMDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Debian tree")
	}
	tree := debianNginx(t)
	dir := filepath.Join(t.TempDir(), "vm")
	mustConvert(t, treeImage(t, tree), "--cmd", "/bin/sh", "--no-kernel", "-o", dir)

	admin := t.TempDir()
	runTool(t, "", "tar", "-C", admin, "-xf", tree, "./var/lib/dpkg/status")
	want := strings.TrimSpace(runTool(t, "", "dpkg-query", "--admindir="+filepath.Join(admin, "var/lib/dpkg"), "-W",
		"-f", "${Package} ${Version} ${Architecture}\n"))
	var got []string
	nginx := ""
	for _, p := range spdxPackages(t, filepath.Join(dir, "sbom.spdx.json")) {
		if !strings.HasPrefix(p.PURL, "pkg:deb/debian/") {
			continue
		}
		arch := p.PURL[strings.Index(p.PURL, "?arch=")+len("?arch="):]
		arch, _, _ = strings.Cut(arch, "&")
		got = append(got, p.Name+" "+p.Version+" "+arch)
		if p.Name == "nginx-light" {
			nginx = p.PURL
		}
	}
	wantLines := strings.Split(want, "\n")
	sort.Strings(wantLines)
	if strings.Join(got, "\n") != strings.Join(wantLines, "\n") {
		t.Errorf("SBOM's deb packages (%d) differ from dpkg-query's (%d):\n%s", len(got), len(wantLines), diffLines(got, wantLines))
	}
	for _, l := range wantLines {
		if rest, ok := strings.CutPrefix(l, "nginx-light "); ok {
			v, arch, _ := strings.Cut(rest, " ")
			if w := "pkg:deb/debian/nginx-light@" + strings.ReplaceAll(v, "+", "%2B") + "?arch=" + arch + "&distro=debian-12"; nginx != w {
				t.Errorf("nginx-light's purl %q, want %q", nginx, w)
			}
		}
	}
	t.Logf("%d deb packages", len(got))
}

// diffLines names the lines only one side has.
func diffLines(a, b []string) string {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, x := range a {
		if !mb[x] {
			out = append(out, "+ "+x)
		}
	}
	for _, x := range b {
		if !ma[x] {
			out = append(out, "- "+x)
		}
	}
	return strings.Join(out, "\n")
}
