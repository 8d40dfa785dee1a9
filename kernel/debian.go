package kernel

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/c2vm/c2vm/internal/tarindex"
)

// DefaultMirror is the Debian archive c2vm fetches its default kernel
// from; C2VM_DEBIAN_MIRROR or --kernel-mirror replace it.
const DefaultMirror = "https://deb.debian.org/debian"

// debianKeys are the public keys that sign Debian 12's and 13's archive
// (keys/README.md says which and how they were exported).
//
//go:embed keys/debian-archive.asc
var debianKeys []byte

// ErrUnreachable is returned by Debian.Fetch when the kernel is not in
// the cache and the mirror cannot be reached.
var ErrUnreachable = errors.New("debian mirror unreachable")

// DefaultSuite is the Debian suite whose kernel a VM of the dpkg
// architecture debArch gets by default: Debian 12 (bookworm) for amd64
// and arm64, whose cloud kernels c2vm is tested with, and Debian 13
// (trixie) for riscv64, the first release with an official riscv64 port.
func DefaultSuite(debArch string) string {
	if debArch == "riscv64" {
		return "trixie"
	}
	return "bookworm"
}

// MetaPackage is the metapackage naming the kernel for debArch: the
// cloud flavour where Debian has one (amd64, arm64; fewer drivers,
// virtio built for VMs), else the generic kernel.
func MetaPackage(debArch string) string {
	switch debArch {
	case "amd64", "arm64":
		return "linux-image-cloud-" + debArch
	}
	return "linux-image-" + debArch
}

// ParseDebianRef splits --kernel debian:SUITE[=VERSION]; ok is false when
// ref is not of that form. An empty SUITE means the default suite.
func ParseDebianRef(ref string) (suite, version string, ok bool) {
	rest, ok := strings.CutPrefix(ref, "debian:")
	if !ok {
		return "", "", false
	}
	suite, version, _ = strings.Cut(rest, "=")
	return suite, version, true
}

// Debian names a kernel package in a Debian archive and where to keep it.
// The zero value of each field but Arch and Cache is its default.
type Debian struct {
	Mirror  string // archive base URL; "" = DefaultMirror
	Suite   string // "" = DefaultSuite(Arch)
	Version string // the kernel package's version; "" = the suite's current
	Arch    string // dpkg architecture: amd64, arm64, riscv64
	Keyring string // OpenPGP keyring file (armored or binary); "" = Debian's keys shipped with c2vm
	Cache   string // cache directory (cache.Dir())
	Client  *http.Client
	// Now is the time signatures and Valid-Until are checked at; nil =
	// time.Now.
	Now func() time.Time
	// Meter shows the .deb's download live; nil = nothing.
	Meter Meter
}

// DebianSource is where a fetched kernel came from, as manifest.json
// records it: enough to pin it with --kernel debian:SUITE=VERSION.
type DebianSource struct {
	Mirror  string `json:"mirror"`
	Suite   string `json:"suite"`
	Package string `json:"package"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"` // of the .deb
	// InRelease is the sha256 of the signed dists/SUITE/InRelease the
	// package was checked against, and Packages that of the Packages.xz
	// it listed the .deb's digest in (provenance records both).
	InRelease string `json:"inRelease,omitempty"`
	Packages  string `json:"packages,omitempty"`
	// Cached is true when no network was needed.
	Cached bool `json:"-"`
	// Path is the .deb in the cache.
	Path string `json:"-"`
}

func (d Debian) defaults() Debian {
	if d.Mirror == "" {
		d.Mirror = DefaultMirror
	}
	d.Mirror = strings.TrimRight(d.Mirror, "/")
	if d.Suite == "" {
		d.Suite = DefaultSuite(d.Arch)
	}
	if d.Client == nil {
		d.Client = http.DefaultClient // honours HTTPS_PROXY, HTTP_PROXY, NO_PROXY
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return d
}

// Fetch returns the kernel package's .deb, from the cache when an earlier
// Fetch resolved the same mirror, suite, version and arch, else from the
// mirror: InRelease checked against the keyring, Packages.xz against
// InRelease's SHA256, the .deb against Packages' SHA256. Both files are
// cached by their digest. Nothing is written to the cache until the
// mirror has answered.
func (d Debian) Fetch(ctx context.Context) (DebianSource, error) {
	return d.defaults().fetch(ctx, "")
}

// FetchPackage is Fetch for any binary package of the suite, by name
// (the tests take riscv64's busybox-static this way); name "" is Fetch.
func (d Debian) FetchPackage(ctx context.Context, name string) (DebianSource, error) {
	return d.defaults().fetch(ctx, name)
}

// fetch fetches the package name, or the kernel when name is "".
func (d Debian) fetch(ctx context.Context, name string) (DebianSource, error) {
	if src, err := d.cached(name); err == nil {
		return src, nil
	}
	rel, err := d.release(ctx)
	if err != nil {
		return DebianSource{}, err
	}
	idx := "main/binary-" + d.Arch + "/Packages.xz"
	sum, ok := rel.sha256[idx]
	if !ok {
		return DebianSource{}, fmt.Errorf("%s/dists/%s/InRelease lists no %s", d.Mirror, d.Suite, idx)
	}
	url := d.Mirror + "/dists/" + d.Suite + "/" + idx
	if rel.byHash {
		// The file by its digest, as apt fetches it: a mirror mid-update
		// serves the new InRelease beside the old Packages.xz, but every
		// by-hash name InRelease lists is there (DebianRepository/Format,
		// "Acquire-By-Hash").
		url = d.Mirror + "/dists/" + d.Suite + "/main/binary-" + d.Arch + "/by-hash/SHA256/" + sum.sha256
	}
	pkgsPath, err := d.blob(ctx, url, sum)
	if err != nil {
		return DebianSource{}, err
	}
	pkg, err := d.resolve(pkgsPath, name)
	if err != nil {
		return DebianSource{}, err
	}
	debPath, err := d.blob(ctx, d.Mirror+"/"+pkg.filename, pkg.file)
	if err != nil {
		return DebianSource{}, err
	}
	src := DebianSource{Mirror: d.Mirror, Suite: d.Suite, Package: pkg.name, Version: pkg.version,
		SHA256: pkg.file.sha256, InRelease: rel.digest, Packages: sum.sha256, Path: debPath}
	return src, d.record(name, src)
}

// recordPath is the file naming the package an earlier Fetch resolved
// for d: one per mirror, suite, arch and version.
func (d Debian) recordPath(name string) string {
	m := sha256.Sum256([]byte(d.Mirror))
	v := d.Version
	if v == "" {
		v = "current"
	}
	if name == "" {
		name = "kernel"
	}
	return filepath.Join(d.Cache, "debian", "resolved", hex.EncodeToString(m[:6]), d.Suite+"_"+d.Arch+"_"+name+"_"+v+".json")
}

func (d Debian) blobPath(sum string) string {
	return filepath.Join(d.Cache, "debian", "sha256", sum)
}

// cached returns the earlier resolution of d when its .deb is still in
// the cache with the digest recorded.
func (d Debian) cached(name string) (DebianSource, error) {
	b, err := os.ReadFile(d.recordPath(name))
	if err != nil {
		return DebianSource{}, err
	}
	var src DebianSource
	if err := json.Unmarshal(b, &src); err != nil {
		return DebianSource{}, err
	}
	p := d.blobPath(src.SHA256)
	if err := checkFile(p, src.SHA256); err != nil {
		return DebianSource{}, err
	}
	src.Path, src.Cached = p, true
	return src, nil
}

func (d Debian) record(name string, src DebianSource) error {
	b, err := json.MarshalIndent(src, "", "  ")
	if err != nil {
		return err
	}
	pinned := d
	pinned.Version = src.Version
	// The suite's current package is also what a later pin to its
	// version (--kernel debian:SUITE=VERSION) finds without the network.
	for _, p := range []string{d.recordPath(name), pinned.recordPath(name)} {
		if err := writeAtomic(p, bytes.NewReader(append(b, '\n')), nil); err != nil {
			return fmt.Errorf("caching package record: %w", err)
		}
	}
	return nil
}

// writeAtomic writes r to p through a temporary file beside it, renamed
// only when check (if any) passes, so that concurrent conversions sharing
// the cache never see a partial or unchecked file.
func writeAtomic(p string, r io.Reader, check func() error) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, r); err != nil {
		return err
	}
	if check != nil {
		if err := check(); err != nil {
			return err
		}
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}

// checkFile checks that p's content has the SHA256 sum.
func checkFile(p, sum string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sum {
		return fmt.Errorf("%s: sha256 %s, want %s", p, got, sum)
	}
	return nil
}

// get opens url, wrapping a transport failure in ErrUnreachable.
func (d Debian) get(ctx context.Context, url string) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := d.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return resp.Body, nil
}

// fileRef is a file's size and SHA256 as an index lists them.
type fileRef struct {
	size   int64
	sha256 string
}

// blob downloads url into the cache by its digest, unless it is there,
// and refuses it when its size or digest differs from want.
func (d Debian) blob(ctx context.Context, url string, want fileRef) (string, error) {
	p := d.blobPath(want.sha256)
	if checkFile(p, want.sha256) == nil {
		return p, nil
	}
	body, err := d.get(ctx, url)
	if err != nil {
		return "", err
	}
	defer body.Close()
	h := sha256.New()
	// Bounded by the size the signed index gives, checked before the
	// file takes its name.
	r := io.TeeReader(io.LimitReader(body, want.size+1), h)
	if d.Meter != nil {
		w := d.Meter("download "+path.Base(url), want.size)
		defer w.Close()
		r = io.TeeReader(r, w)
	}
	c := &tarindex.Counter{R: r}
	err = writeAtomic(p, c, func() error {
		if got, n := hex.EncodeToString(h.Sum(nil)), c.N; n != want.size || got != want.sha256 {
			return fmt.Errorf("refused: sha256 %s (%d bytes), the signed index says sha256 %s (%d bytes)",
				got, n, want.sha256, want.size)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("downloading %s: %w", url, err)
	}
	return p, nil
}

// release is what c2vm reads of a suite's signed Release file.
type release struct {
	sha256 map[string]fileRef // by path under dists/SUITE
	byHash bool               // Acquire-By-Hash: yes
	digest string             // sha256 of the InRelease file, hex
}

// maxInRelease bounds InRelease (Debian's: 150 kB).
const maxInRelease = 16 << 20

// release fetches and checks dists/SUITE/InRelease: a good signature by
// a key of the keyring, the suite or codename asked for, no Valid-Until
// in the past.
func (d Debian) release(ctx context.Context) (*release, error) {
	url := d.Mirror + "/dists/" + d.Suite + "/InRelease"
	body, err := d.get(ctx, url)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := io.ReadAll(io.LimitReader(body, maxInRelease))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	text, err := d.verify(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	rel, err := parseRelease(text, d.Suite, d.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", url, err)
	}
	h := sha256.Sum256(data)
	rel.digest = hex.EncodeToString(h[:])
	return rel, nil
}

// keyring reads d.Keyring, armored or binary, or the shipped keys.
func (d Debian) keyring() (openpgp.EntityList, error) {
	b, name := debianKeys, "shipped Debian keys"
	if d.Keyring != "" {
		var err error
		if b, err = os.ReadFile(d.Keyring); err != nil {
			return nil, fmt.Errorf("reading keyring: %w", err)
		}
		name = d.Keyring
	}
	kr, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(b))
	if err != nil {
		kr, err = openpgp.ReadKeyRing(bytes.NewReader(b))
	}
	if err != nil {
		return nil, fmt.Errorf("reading keyring %s: %w", name, err)
	}
	return kr, nil
}

// verify checks InRelease's clear signature and returns the signed text.
// The file must be the signed message alone, as apt demands: text around
// it would not be covered by the signature.
func (d Debian) verify(data []byte) ([]byte, error) {
	kr, err := d.keyring()
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(data, []byte("-----BEGIN PGP SIGNED MESSAGE-----")) {
		return nil, errors.New("not a clear-signed message")
	}
	b, rest := clearsign.Decode(data)
	if b == nil || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("not one clear-signed message")
	}
	cfg := &packet.Config{Time: d.Now}
	if _, err := openpgp.CheckDetachedSignature(kr, bytes.NewReader(b.Bytes), b.ArmoredSignature.Body, cfg); err != nil {
		return nil, fmt.Errorf("signature check: %w", err)
	}
	return b.Plaintext, nil
}

// parseRelease reads a Release file's Suite, Codename, Valid-Until and
// SHA256 fields (Debian's repository format:
// https://wiki.debian.org/DebianRepository/Format#A.22Release.22_files).
func parseRelease(text []byte, suite string, now time.Time) (*release, error) {
	var f map[string]string
	err := stanzas(bytes.NewReader(text), func(s map[string]string) bool { f = s; return false })
	if err != nil || f == nil {
		return nil, fmt.Errorf("reading Release: no fields (%v)", err)
	}
	if f["Suite"] != suite && f["Codename"] != suite {
		return nil, fmt.Errorf("signed Release is for suite %q (%s), not %q", f["Suite"], f["Codename"], suite)
	}
	if v := f["Valid-Until"]; v != "" {
		t, err := time.Parse(time.RFC1123, strings.Replace(v, "UTC", "GMT", 1))
		if err != nil {
			return nil, fmt.Errorf("Release Valid-Until %q: %w", v, err)
		}
		if now.After(t) {
			return nil, fmt.Errorf("signed Release expired at %s (Valid-Until)", v)
		}
	}
	rel := &release{sha256: map[string]fileRef{}, byHash: f["Acquire-By-Hash"] == "yes"}
	for _, line := range strings.Split(f["SHA256"], "\n") {
		fs := strings.Fields(line)
		if len(fs) != 3 {
			continue
		}
		size, err := strconv.ParseInt(fs[1], 10, 64)
		if err != nil || len(fs[0]) != 64 {
			return nil, fmt.Errorf("Release SHA256 line %q: bad size or digest", line)
		}
		rel.sha256[fs[2]] = fileRef{size: size, sha256: fs[0]}
	}
	return rel, nil
}

// stanzas calls each with the fields of every deb822 paragraph in r until
// it returns false. A multi-line field's continuation lines are joined by
// "\n"; the first line's value may be empty (SHA256 in Release).
func stanzas(r io.Reader, each func(map[string]string) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	f := map[string]string{}
	last := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			if len(f) > 0 && !each(f) {
				return nil
			}
			f, last = map[string]string{}, ""
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				f[last] += "\n" + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return fmt.Errorf("deb822 line %q: no colon", line)
			}
			last = k
			f[k] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(f) > 0 {
		each(f)
	}
	return nil
}

// debPackage is one Packages entry c2vm may fetch.
type debPackage struct {
	name, version, depends, filename string
	file                             fileRef
}

// resolve finds the package name in Packages.xz at d.Version (or the
// only one listed), or for name "" the kernel: the metapackage
// (MetaPackage), then the versioned linux-image-N... package its Depends
// names, as apt-get install would.
func (d Debian) resolve(pkgsPath, name string) (debPackage, error) {
	f, err := os.Open(pkgsPath)
	if err != nil {
		return debPackage{}, err
	}
	defer f.Close()
	// xz(1) when installed, as for a .deb's data (streamDecompressor):
	// the Go decoder takes seconds over Packages' 45 MB.
	zr, stop, err := streamDecompressor("Packages.xz", f)
	if err != nil {
		return debPackage{}, fmt.Errorf("reading Packages.xz: %w", err)
	}
	byName, err := readPackages(zr, name)
	if serr := stop(); err == nil {
		err = serr // xz's own message when it failed
	}
	if err != nil {
		return debPackage{}, fmt.Errorf("reading Packages.xz: %w", err)
	}
	return d.choose(byName, name)
}

// readPackages collects the Packages entries of name, or for name "" of
// every linux-image-* package.
func readPackages(r io.Reader, name string) (map[string][]debPackage, error) {
	byName := map[string][]debPackage{}
	err := stanzas(r, func(s map[string]string) bool {
		n := s["Package"]
		if n == name || name == "" && strings.HasPrefix(n, "linux-image-") {
			size, _ := strconv.ParseInt(s["Size"], 10, 64)
			byName[n] = append(byName[n], debPackage{name: n, version: s["Version"], depends: s["Depends"],
				filename: s["Filename"], file: fileRef{size: size, sha256: s["SHA256"]}})
		}
		return true
	})
	return byName, err
}

// choose is resolve's choice among the entries readPackages found.
func (d Debian) choose(byName map[string][]debPackage, name string) (debPackage, error) {
	version := d.Version
	if name == "" {
		meta, err := pick(byName, MetaPackage(d.Arch), d.Version)
		if err != nil {
			return debPackage{}, err
		}
		if name, version = kernelDepends(meta.depends); name == "" {
			return debPackage{}, fmt.Errorf("%s %s depends on no linux-image-N package: %q", meta.name, meta.version, meta.depends)
		}
	}
	pkg, err := pick(byName, name, version)
	if err != nil {
		return debPackage{}, err
	}
	if len(pkg.file.sha256) != 64 || pkg.file.size <= 0 || pkg.filename == "" || strings.Contains(pkg.filename, "..") {
		return debPackage{}, fmt.Errorf("Packages entry %s %s: no valid Filename, Size and SHA256", pkg.name, pkg.version)
	}
	return pkg, nil
}

// pick is the package name at version, or its only entry when version is "".
func pick(byName map[string][]debPackage, name, version string) (debPackage, error) {
	var have []string
	for _, p := range byName[name] {
		if p.version == version || version == "" && len(byName[name]) == 1 {
			return p, nil
		}
		have = append(have, p.version)
	}
	if len(have) == 0 {
		return debPackage{}, fmt.Errorf("Packages lists no %s", name)
	}
	return debPackage{}, fmt.Errorf("Packages lists %s at %s, not %q", name, strings.Join(have, ", "), version)
}

// kernelDepends finds the linux-image-N... package in a Depends field and
// the version an "(= V)" pins it to.
func kernelDepends(depends string) (name, version string) {
	for _, dep := range strings.FieldsFunc(depends, func(r rune) bool { return r == ',' || r == '|' }) {
		dep = strings.TrimSpace(dep)
		n, rest, _ := strings.Cut(dep, " ")
		n, _, _ = strings.Cut(n, ":")
		tail, ok := strings.CutPrefix(n, "linux-image-")
		if !ok || tail == "" || tail[0] < '0' || tail[0] > '9' {
			continue
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(rest), "(="); ok {
			version = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), ")"))
		}
		return n, version
	}
	return "", ""
}
