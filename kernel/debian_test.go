package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/ulikunitz/xz"
)

// testKey makes a throwaway ed25519 signing key valid from created for
// lifetime (0 = forever).
func testKey(t testing.TB, created time.Time, lifetime time.Duration) *openpgp.Entity {
	t.Helper()
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Time: func() time.Time { return created },
		KeyLifetimeSecs: uint32(lifetime / time.Second)}
	e, err := openpgp.NewEntity("c2vm test archive", "", "test@c2vm.invalid", cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// writeKeyring writes e's public key, armored, and returns its path.
func writeKeyring(t testing.TB, e *openpgp.Entity) string {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Serialize(w); err != nil {
		t.Fatal(err)
	}
	w.Close()
	p := filepath.Join(t.TempDir(), "keyring.asc")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// fakeArchive is a one-suite Debian archive for arm64 with a cloud
// metapackage and the kernel package it depends on.
type fakeArchive struct {
	suite, version string
	deb            []byte
	packagesXZ     []byte
	release        string
	signer         *openpgp.Entity
	signedAt       time.Time
	// Served overrides what the server sends for a path.
	served map[string][]byte
	hits   int
	// inReleaseSent is the InRelease the server sends.
	inReleaseSent []byte
}

func newFakeArchive(t testing.TB, signer *openpgp.Entity, signedAt time.Time) *fakeArchive {
	t.Helper()
	a := &fakeArchive{suite: "bookworm", version: "6.1.99-1", deb: []byte("!<arch>\nnot really a kernel package\n"),
		signer: signer, signedAt: signedAt, served: map[string][]byte{}}
	pkgs := fmt.Sprintf(`Package: linux-image-cloud-arm64
Version: %[1]s
Depends: linux-image-6.1.0-99-cloud-arm64 (= %[1]s)
Description: meta
 continued
Filename: pool/main/l/linux-signed-arm64/linux-image-cloud-arm64_%[1]s_arm64.deb
Size: 4
SHA256: %[2]s

Package: linux-image-6.1.0-99-cloud-arm64
Version: %[1]s
Filename: pool/main/l/linux-signed-arm64/linux-image-6.1.0-99-cloud-arm64_%[1]s_arm64.deb
Size: %[3]d
SHA256: %[4]s

Package: busybox
Version: 1
`, a.version, sum([]byte("meta")), len(a.deb), sum(a.deb))
	var xbuf bytes.Buffer
	zw, err := xz.NewWriter(&xbuf)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write([]byte(pkgs))
	zw.Close()
	a.packagesXZ = xbuf.Bytes()
	a.release = fmt.Sprintf("Origin: Debian\nSuite: stable\nCodename: %s\nSHA256:\n %s %d main/binary-arm64/Packages.xz\n",
		a.suite, sum(a.packagesXZ), len(a.packagesXZ))
	return a
}

func (a *fakeArchive) inRelease(t testing.TB) []byte {
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, a.signer.PrivateKey, &packet.Config{Time: func() time.Time { return a.signedAt }})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(a.release))
	w.Close()
	return buf.Bytes()
}

func (a *fakeArchive) serve(t *testing.T) *httptest.Server {
	files := map[string][]byte{
		"/dists/bookworm/InRelease":                     a.inRelease(t),
		"/dists/bookworm/main/binary-arm64/Packages.xz": a.packagesXZ,
		"/pool/main/l/linux-signed-arm64/linux-image-6.1.0-99-cloud-arm64_" + a.version + "_arm64.deb": a.deb,
	}
	files["/dists/bookworm/main/binary-arm64/by-hash/SHA256/"+sum(a.packagesXZ)] = a.packagesXZ
	for p, b := range a.served {
		files[p] = b
	}
	a.inReleaseSent = files["/dists/bookworm/InRelease"]
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.hits++
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(srv.Close)
	return srv
}

var testNow = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func TestDebianFetch(t *testing.T) {
	debPath := "/pool/main/l/linux-signed-arm64/linux-image-6.1.0-99-cloud-arm64_6.1.99-1_arm64.deb"
	key := testKey(t, testNow.Add(-time.Hour), 0)
	for _, tc := range []struct {
		name     string
		signer   *openpgp.Entity
		signedAt time.Time
		keyring  *openpgp.Entity // nil = signer
		version  string
		pkg      string // "" = the kernel
		tamper   bool   // change the signed text after signing
		release  func(string) string
		served   map[string][]byte
		wantErr  string // "" = fetches
	}{
		{name: "current"},
		{name: "by hash", release: func(r string) string { return r + "Acquire-By-Hash: yes\n" },
			served: map[string][]byte{"/dists/bookworm/main/binary-arm64/Packages.xz": []byte("stale")}},
		{name: "pinned version", version: "6.1.99-1"},
		{name: "pinned version absent", version: "6.1.1-1", wantErr: `at 6.1.99-1, not "6.1.1-1"`},
		{name: "tampered deb", served: map[string][]byte{debPath: []byte("!<arch>\nnot really a kernel packagf\n")},
			wantErr: "the signed index says sha256 " + sum([]byte("!<arch>\nnot really a kernel package\n"))},
		{name: "tampered Packages.xz", served: map[string][]byte{"/dists/bookworm/main/binary-arm64/Packages.xz": []byte("xz?")},
			wantErr: "Packages.xz: refused: sha256 " + sum([]byte("xz?"))},
		{name: "wrong key", keyring: testKey(t, testNow.Add(-time.Hour), 0), wantErr: "signature check"},
		{name: "expired key", signer: testKey(t, testNow.Add(-48*time.Hour), 24*time.Hour),
			signedAt: testNow.Add(-47 * time.Hour), wantErr: "signature check"},
		{name: "other suite", release: func(r string) string { return strings.Replace(r, "bookworm", "trixie", 1) },
			wantErr: `for suite "stable" (trixie), not "bookworm"`},
		{name: "Valid-Until past", release: func(r string) string { return r + "Valid-Until: Sat, 01 Jan 2022 00:00:00 UTC\n" },
			wantErr: "expired at"},
		{name: "package without Filename", pkg: "busybox", wantErr: "busybox 1: no valid Filename"},
		{name: "signed text changed", tamper: true, wantErr: "signature check"},
		{name: "tampered InRelease", served: map[string][]byte{"/dists/bookworm/InRelease": nil}, wantErr: "not a clear-signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			signer, signedAt, kr := key, testNow.Add(-time.Minute), tc.keyring
			if tc.signer != nil {
				signer, signedAt = tc.signer, tc.signedAt
			}
			if kr == nil {
				kr = signer
			}
			a := newFakeArchive(t, signer, signedAt)
			if tc.release != nil {
				a.release = tc.release(a.release)
			}
			for p, b := range tc.served {
				a.served[p] = b
			}
			if tc.tamper {
				a.served["/dists/bookworm/InRelease"] = bytes.Replace(a.inRelease(t), []byte("Origin: Debian"), []byte("Origin: Debiam"), 1)
			}
			srv := a.serve(t)
			cache := t.TempDir()
			d := Debian{Mirror: srv.URL + "/", Arch: "arm64", Version: tc.version, Cache: cache,
				Keyring: writeKeyring(t, kr), Now: func() time.Time { return testNow }}
			src, err := d.FetchPackage(context.Background(), tc.pkg)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Fetch() = %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := DebianSource{Mirror: srv.URL, Suite: "bookworm", Package: "linux-image-6.1.0-99-cloud-arm64",
				Version: "6.1.99-1", SHA256: sum(a.deb), InRelease: sum(a.inReleaseSent), Packages: sum(a.packagesXZ), Path: filepath.Join(cache, "debian", "sha256", sum(a.deb))}
			if src != want {
				t.Fatalf("Fetch() = %+v, want %+v", src, want)
			}
			if b, _ := os.ReadFile(src.Path); !bytes.Equal(b, a.deb) {
				t.Fatalf("cached .deb differs from the served one")
			}
			// A second Fetch needs no network.
			srv.Close()
			again, err := d.Fetch(context.Background())
			want.Cached = true
			if err != nil || again != want {
				t.Fatalf("cached Fetch() = %+v, %v; want %+v", again, err, want)
			}
			// So does a pin to the version fetched.
			d.Version = want.Version
			if again, err := d.Fetch(context.Background()); err != nil || again != want {
				t.Fatalf("cached pinned Fetch() = %+v, %v; want %+v", again, err, want)
			}
		})
	}
}

func TestDebianFetchOffline(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	cache := filepath.Join(t.TempDir(), "cache")
	_, err := Debian{Mirror: url, Arch: "arm64", Cache: cache}.Fetch(context.Background())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("Fetch() = %v, want ErrUnreachable", err)
	}
	if _, err := os.Stat(cache); !os.IsNotExist(err) {
		t.Fatalf("offline Fetch wrote the cache: %v", err)
	}
}

// TestDebianKeysValid fails a year before a shipped Debian key (or its
// signing subkey) expires: time to refresh keys/debian-archive.asc.
func TestDebianKeysValid(t *testing.T) {
	kr, err := Debian{}.keyring()
	if err != nil {
		t.Fatal(err)
	}
	if len(kr) != 4 {
		t.Fatalf("shipped keyring has %d keys, want 4 (keys/README.md)", len(kr))
	}
	soon := time.Now().AddDate(1, 0, 0)
	for _, e := range kr {
		t.Run(e.PrimaryKey.KeyIdString(), func(t *testing.T) {
			if _, ok := e.SigningKey(soon); !ok {
				t.Fatalf("key %X has no signing key valid on %s: refresh keys/debian-archive.asc", e.PrimaryKey.Fingerprint, soon.Format(time.DateOnly))
			}
		})
	}
}

func TestParseDebianRef(t *testing.T) {
	for _, tc := range []struct {
		ref, suite, version string
		ok                  bool
	}{
		{"debian:bookworm", "bookworm", "", true},
		{"debian:trixie=6.12.107-1", "trixie", "6.12.107-1", true},
		{"debian:", "", "", true},
		{"/boot/vmlinuz", "", "", false},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			s, v, ok := ParseDebianRef(tc.ref)
			if s != tc.suite || v != tc.version || ok != tc.ok {
				t.Fatalf("ParseDebianRef(%q) = %q, %q, %v", tc.ref, s, v, ok)
			}
		})
	}
}

func TestKernelDepends(t *testing.T) {
	for _, tc := range []struct{ depends, name, version string }{
		{"linux-image-6.1.0-50-cloud-arm64 (= 6.1.176-1)", "linux-image-6.1.0-50-cloud-arm64", "6.1.176-1"},
		{"linux-image-6.12.107+deb13-riscv64 (= 6.12.107-1)", "linux-image-6.12.107+deb13-riscv64", "6.12.107-1"},
		{"initramfs-tools | linux-initramfs-tool, linux-image-6.1.0-1-amd64", "linux-image-6.1.0-1-amd64", ""},
		{"linux-image-amd64", "", ""},
	} {
		t.Run(tc.depends, func(t *testing.T) {
			n, v := kernelDepends(tc.depends)
			if n != tc.name || v != tc.version {
				t.Fatalf("kernelDepends(%q) = %q, %q", tc.depends, n, v)
			}
		})
	}
}
