package e2e

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/c2vm/c2vm/internal/testkernel"
	"github.com/opencontainers/go-digest"
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

// signingKeys makes an ed25519 and an ECDSA P-256 PKCS#8 key pair with
// openssl, as a user would: name → private key file (the public key is
// beside it, .pub).
func signingKeys(t *testing.T) map[string]string {
	t.Helper()
	fixtures.NeedTools(t, "openssl")
	dir := t.TempDir()
	keys := map[string]string{}
	for name, args := range map[string][]string{
		"ed25519": {"-algorithm", "ed25519"},
		"p256":    {"-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"},
	} {
		key := filepath.Join(dir, name+".pem")
		runTool(t, "", "openssl", append(append([]string{"genpkey"}, args...), "-out", key)...)
		runTool(t, "", "openssl", "pkey", "-in", key, "-pubout", "-out", key+".pub")
		keys[name] = key
	}
	return keys
}

// runC2VM runs the built c2vm binary and returns its exit status, stdout
// and stderr.
func runC2VM(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(c2vmBinary(t), args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestVerify: a signed conversion (kernel, disk, verity) verifies with its
// key through the real binary; a wrong key, one flipped byte in any file
// of the directory, or a provenance swapped for an unsigned one each give
// status 1 and a line naming the file.
func TestVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("converts with a disk")
	}
	keys := signingKeys(t)
	for _, kind := range []string{"ed25519", "p256"} {
		t.Run(kind, func(t *testing.T) {
			key, other := keys[kind], keys["ed25519"]
			if kind == "ed25519" {
				other = keys["p256"]
			}
			dir := filepath.Join(t.TempDir(), "vm")
			if code, _, stderr := runC2VM(t, "convert", "-q", "oci:"+filepath.Join(fixtures.Dir(t), "busybox-amd64"),
				"--kernel", testkernel.Deb(t, "amd64"), "--init", initFor(t, "amd64"), "--disk", "raw", "--verity",
				"--efi-stub", efiStub(t, "amd64"), "--sign-key", key, "-o", dir); code != 0 {
				t.Fatalf("convert: exit %d: %s", code, stderr)
			}
			if code, stdout, stderr := runC2VM(t, "verify", "--key", key+".pub", dir); code != 0 || !strings.Contains(stdout, "signed by key") {
				t.Fatalf("verify of a fresh output: exit %d\n%s%s", code, stdout, stderr)
			}
			wantFailure(t, dir, "provenance.dsse.json", "signature does not verify", "verify", "--key", other+".pub", dir)
			entries, _ := os.ReadDir(dir)
			if len(entries) < 12 {
				t.Fatalf("only %d files in %s", len(entries), dir)
			}
			for _, e := range entries {
				p := filepath.Join(dir, e.Name())
				flipByte(t, p)
				wantFailure(t, dir, e.Name(), "", "verify", "--key", key+".pub", dir)
				flipByte(t, p)
			}
			// An unsigned provenance does not pass for a signed one.
			runC2VM(t, "convert", "-q", "oci:"+filepath.Join(fixtures.Dir(t), "busybox-amd64"), "--no-kernel", "-o", dir+"-plain")
			wantFailure(t, dir+"-plain", "provenance.intoto.json", "not signed", "verify", "--key", key+".pub", dir+"-plain")
		})
	}
}

// wantFailure runs c2vm args and wants status 1 with a line naming
// dir/name (and saying what, when what is not "").
func wantFailure(t *testing.T, dir, name, what string, args ...string) {
	t.Helper()
	code, stdout, stderr := runC2VM(t, args...)
	line := ""
	for _, l := range strings.Split(stderr, "\n") {
		if strings.HasPrefix(l, "c2vm: verify: "+filepath.Join(dir, name)+": ") && strings.Contains(l, what) {
			line = l
		}
	}
	if code != 1 || line == "" {
		t.Errorf("%s changed: exit %d, want 1 with a line naming it (%q)\nstdout: %s\nstderr: %s", name, code, what, stdout, stderr)
	}
}

// flipByte inverts the byte in the middle of a file (twice restores it).
func flipByte(t *testing.T, p string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	b := make([]byte, 1)
	off := fi.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

// TestBuildKitAttestations: an image whose index carries a BuildKit
// attestation manifest (laid out as BuildKit's attestation storage
// documents it, added here to the umoci-made busybox layout, as no
// BuildKit runs offline) keeps its in-toto statement beside c2vm's, an
// artifact the provenance covers.
func TestBuildKitAttestations(t *testing.T) {
	fixtures.NeedTools(t, "cp")
	layout := filepath.Join(t.TempDir(), "oci")
	runTool(t, "", "cp", "-r", filepath.Join(fixtures.Dir(t), "busybox-amd64"), layout)
	var idx struct {
		SchemaVersion int              `json:"schemaVersion"`
		Manifests     []map[string]any `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(layout, "index.json"))
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("fixture index.json: %v", err)
	}
	img := idx.Manifests[0]["digest"].(string)
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1","predicateType":"https://spdx.dev/Document",` +
		`"subject":[{"name":"pkg:docker/busybox","digest":{"sha256":"` + strings.TrimPrefix(img, "sha256:") + `"}}],"predicate":{"spdxVersion":"SPDX-2.3"}}`)
	st := addBlob(t, layout, statement)
	cfgBytes := []byte(`{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":["` + st + `"]}}`)
	man := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + addBlob(t, layout, cfgBytes) + `","size":` + itoa(int64(len(cfgBytes))) + `},` +
		`"layers":[{"mediaType":"application/vnd.in-toto+json","digest":"` + st + `","size":` + itoa(int64(len(statement))) + `,"annotations":{"in-toto.io/predicate-type":"https://spdx.dev/Document"}}]}`)
	idx.Manifests = append(idx.Manifests, map[string]any{"mediaType": "application/vnd.oci.image.manifest.v1+json",
		"digest": addBlob(t, layout, man), "size": len(man), "platform": map[string]string{"architecture": "unknown", "os": "unknown"},
		"annotations": map[string]string{"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": img}})
	b, _ = json.Marshal(idx)
	os.WriteFile(filepath.Join(layout, "index.json"), b, 0o644)

	dir := filepath.Join(t.TempDir(), "vm")
	mustConvert(t, "oci:"+layout, "--no-kernel", "-o", dir)
	got, err := os.ReadFile(filepath.Join(dir, "buildkit-1.intoto.json"))
	if err != nil || string(got) != string(statement) {
		t.Fatalf("buildkit-1.intoto.json: %q, %v", got, err)
	}
	if code, stdout, stderr := runC2VM(t, "verify", dir); code != 0 || !strings.Contains(stdout, "artifacts match") {
		t.Errorf("verify: exit %d\n%s%s", code, stdout, stderr)
	}
	prov, _ := os.ReadFile(filepath.Join(dir, "provenance.intoto.json"))
	if !strings.Contains(string(prov), `"name": "buildkit-1.intoto.json"`) {
		t.Errorf("the provenance has no subject buildkit-1.intoto.json:\n%s", prov)
	}
}

// addBlob writes b into an OCI layout's blobs and returns its digest.
func addBlob(t *testing.T, layout string, b []byte) string {
	t.Helper()
	d := digest.FromBytes(b)
	if err := os.WriteFile(filepath.Join(layout, "blobs", "sha256", d.Encoded()), b, 0o644); err != nil {
		t.Fatal(err)
	}
	return d.String()
}
