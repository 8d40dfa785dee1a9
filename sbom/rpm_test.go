package sbom

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	rpmdb "github.com/knqyf263/go-rpmdb/pkg"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// rpmSpecs are the fixture packages: an epoch, an SPDX license and one
// that is not (Fedora's old "GPLv2+" style), an arch-specific one.
var rpmSpecs = map[string]string{
	"c2vm-fixture": "Version: 1.2.3\nRelease: 4\nEpoch: 2\nLicense: MIT OR Apache-2.0\nVendor: c2vm tests\nBuildArch: noarch\n",
	"c2vm-other":   "Version: 0.9\nRelease: 1.fc40\nLicense: GPLv2+\nBuildArch: x86_64\n",
}

// rpmRoot builds the fixture packages with rpmbuild and installs them
// (--justdb) into a new root's sqlite rpmdb with Debian's rpm 4.18.
func rpmRoot(t *testing.T) string {
	t.Helper()
	fixtures.NeedTools(t, "rpm", "rpmbuild")
	dir := t.TempDir()
	top, root := filepath.Join(dir, "top"), filepath.Join(dir, "root")
	var rpms []string
	for name, spec := range rpmSpecs {
		p := filepath.Join(dir, name+".spec")
		body := "Name: " + name + "\nSummary: fixture\n" + spec + "%description\nfixture\n%files\n"
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "rpmbuild", "--define", "_topdir "+top, "--target", targetOf(spec), "-bb", p)
	}
	rpms, _ = filepath.Glob(filepath.Join(top, "RPMS", "*", "*.rpm"))
	if err := os.MkdirAll(filepath.Join(root, "var/lib/rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--root", root, "--dbpath", "/var/lib/rpm", "--define", "_db_backend sqlite"}
	run(t, "rpm", append(args, "--initdb")...)
	run(t, "rpm", append(args, append([]string{"-i", "--justdb", "--nodeps", "--noscripts", "--ignorearch"}, rpms...)...)...)
	return root
}

func targetOf(spec string) string {
	if strings.Contains(spec, "noarch") {
		return "noarch"
	}
	return "x86_64"
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// rpmQuery is what rpm -qa says of root, one "NAME VERSION ARCH LICENSE"
// a line, sorted; VERSION as Package.Version writes it.
func rpmQuery(t *testing.T, root string) string {
	out := run(t, "rpm", "--root", root, "--dbpath", "/var/lib/rpm", "-qa", "--qf",
		`%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE} %{ARCH} %{LICENSE}\n`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func rpmLines(ps []Package) string {
	var lines []string
	for _, p := range ps {
		lines = append(lines, p.Name+" "+p.Version+" "+p.Arch+" "+p.License)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func TestRpmSQLite(t *testing.T) {
	root := rpmRoot(t)
	inv, err := Read(os.DirFS(root), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rpmLines(inv.Packages), rpmQuery(t, root); got != want {
		t.Errorf("packages:\n%s\nrpm -qa:\n%s", got, want)
	}
	if got := inv.Packages[0].PURL(Distro{ID: "fedora", VersionID: "40"}); got != "pkg:rpm/fedora/c2vm-fixture@1.2.3-4?arch=noarch&distro=fedora-40&epoch=2" {
		t.Errorf("purl %s", got)
	}
}

// TestRpmNDB reads an ndb Packages.db holding the header blobs rpm wrote
// into the sqlite fixture. Debian's rpm is built without ndb, so the
// container around them is written here by rpm's lib/backend/ndb/rpmpkg.c
// layout; the headers inside are rpm's own.
func TestRpmNDB(t *testing.T) {
	root := rpmRoot(t)
	blobs, err := sqliteBlobs(filepath.Join(root, "var/lib/rpm/rpmdb.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	ndbRoot := rootWith(t, "usr/lib/sysimage/rpm/Packages.db", writeNDB(blobs))
	inv, err := Read(os.DirFS(ndbRoot), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rpmLines(inv.Packages), rpmQuery(t, root); got != want {
		t.Errorf("packages:\n%s\nrpm -qa:\n%s", got, want)
	}
}

// writeNDB lays blobs out as rpm's ndb does: one slot page after the
// header, each blob in 16-byte blocks after the slot pages, one free slot
// between them.
func writeNDB(blobs [][]byte) []byte {
	le := binary.LittleEndian
	b := make([]byte, ndbPage)
	le.PutUint32(b, ndbHeaderMagic)
	le.PutUint32(b[12:], 1)
	for off := 2 * ndbSlotSize; off < ndbPage; off += ndbSlotSize {
		le.PutUint32(b[off:], ndbSlotMagic)
	}
	for i, blob := range blobs {
		slot := b[(3+i)*ndbSlotSize:]
		le.PutUint32(slot[4:], uint32(i+1))
		le.PutUint32(slot[8:], uint32(len(b)/ndbSlotSize))
		h := make([]byte, 16)
		le.PutUint32(h, ndbBlobMagic)
		le.PutUint32(h[4:], uint32(i+1))
		le.PutUint32(h[12:], uint32(len(blob)))
		b = append(append(b, h...), blob...)
		b = append(b, make([]byte, 32-len(b)%16)...) // rpm's tail, rounded to a block
	}
	return b
}

// TestRpmBDB reads CentOS 7's Berkeley DB rpmdb, the fixture go-rpmdb
// ships (made by CentOS's own rpm), and compares with go-rpmdb's own
// header parser.
func TestRpmBDB(t *testing.T) {
	fixtures.NeedTools(t, "go")
	dir := strings.TrimSpace(run(t, "go", "list", "-m", "-f", "{{.Dir}}", "github.com/knqyf263/go-rpmdb"))
	db := filepath.Join(dir, "pkg/testdata/centos7-plain/Packages")
	if _, err := os.Stat(db); err != nil {
		fixtures.Skip(t, "go-rpmdb's module source is not in the module cache: %v", err)
	}
	b, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	inv, err := Read(os.DirFS(rootWith(t, "var/lib/rpm/Packages", b)), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	r, err := rpmdb.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := r.ListPackages()
	if err != nil {
		t.Fatal(err)
	}
	var want []Package
	for _, p := range theirs {
		v := p.Version + "-" + p.Release
		if p.Epoch != 0 {
			v = strconv.Itoa(p.Epoch) + ":" + v
		}
		want = append(want, Package{Name: p.Name, Version: v, Arch: p.Arch, License: p.License})
	}
	if len(inv.Packages) < 100 {
		t.Fatalf("%d packages in CentOS 7's rpmdb", len(inv.Packages))
	}
	if got, w := rpmLines(inv.Packages), rpmLines(want); got != w {
		t.Errorf("packages differ from go-rpmdb's:\n%s\nwant:\n%s", got, w)
	}
}

// rootWith is a new root holding one file.
func rootWith(t *testing.T, name string, data []byte) string {
	t.Helper()
	root := t.TempDir()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}
