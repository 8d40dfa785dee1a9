package convert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/c2vm/c2vm/kernel"
	"github.com/c2vm/c2vm/provenance"
	"github.com/c2vm/c2vm/sbom"
	"github.com/c2vm/c2vm/vmdir"
	"github.com/opencontainers/go-digest"
)

// part is an input of the VM that no package database lists (the
// kernel, the guest init, the EFI stub): a component of the SBOM and a
// resolved dependency of the provenance.
type part struct {
	role, name, version string
	sha256              string // hex, of the file named by uri
	uri, fileName, purl string
	purpose             string // SPDX primaryPackagePurpose
	annotations         map[string]string
}

func (p part) component() sbom.Component {
	return sbom.Component{Name: p.name, Version: p.version, SHA256: p.sha256, FileName: p.fileName,
		PURL: p.purl, Purpose: p.purpose, Comment: "the VM's " + p.role}
}

func (p part) resource() provenance.Resource {
	r := provenance.Resource{Name: p.role, URI: p.uri, Annotations: p.annotations}
	if p.sha256 != "" {
		r.Digest = map[string]string{"sha256": p.sha256}
	}
	if r.URI == "" {
		r.URI = p.purl
	}
	return r
}

// sbomOutput is sbom.spdx.json, written with every conversion.
var sbomOutput = output{name: "sbom", phase: beforeManifest, write: (*conversion).writeSBOM}

// attestationsOutput is buildkit-<n>.intoto.json, the statements
// BuildKit attached to the image, when it attached any.
var attestationsOutput = output{name: "attestations", phase: beforeManifest, write: (*conversion).writeAttestations}

// provenanceOutput is the provenance (provenance.intoto.json, or
// provenance.dsse.json signed), written with every conversion over
// every artifact and manifest.json.
var provenanceOutput = output{name: "provenance", phase: afterManifest, write: (*conversion).writeProvenance}

// writeSBOM lists the root's packages, from its package databases in the
// flattened tree, and the parts, as sbom.spdx.json.
func (c *conversion) writeSBOM(context.Context) error {
	start := time.Now() // for the progress line only
	inv, err := sbom.Read(c.tree.FS(), sbom.Options{TempDir: c.st.dir})
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	doc := sbom.Document{Name: c.o.Image, ImageDigest: c.img.ManifestDigest.String(), Distro: inv.Distro,
		Packages: inv.Packages, Created: c.o.Epoch, Tool: "c2vm-" + c.o.Version}
	for _, p := range c.parts {
		doc.Components = append(doc.Components, p.component())
	}
	f, err := os.OpenFile(c.st.path(vmdir.SBOM), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := doc.WriteSPDX(f); err != nil {
		return fmt.Errorf("writing %s: %w", vmdir.SBOM, err)
	}
	dbs := "no package database"
	if len(inv.Databases) > 0 {
		dbs = strings.Join(inv.Databases, ", ")
	}
	c.o.progress("sbom: %d packages from %s, %d components, in %s", len(inv.Packages), dbs, len(doc.Components), time.Since(start).Round(time.Millisecond))
	return f.Close()
}

// writeProvenance writes the provenance over every artifact and
// manifest.json, signed when there is a key.
func (c *conversion) writeProvenance(context.Context) error {
	m, err := vmdir.DigestFile(c.st.path(vmdir.ManifestFile))
	if err != nil {
		return err
	}
	subjects := map[string]string{vmdir.ManifestFile: m.SHA256}
	for name, a := range c.manifest.Artifacts {
		subjects[name] = a.SHA256
	}
	deps, err := c.dependencies()
	if err != nil {
		return err
	}
	st := provenance.New(subjects, provenance.Build{Parameters: c.o.Parameters, Dependencies: deps, Version: c.o.Version})
	if c.o.SignKey == nil {
		b, err := st.Marshal()
		if err != nil {
			return err
		}
		return os.WriteFile(c.st.path(vmdir.Provenance), b, 0o644)
	}
	env, err := provenance.Sign(st, c.o.SignKey)
	if err != nil {
		return fmt.Errorf("signing the provenance: %w", err)
	}
	c.o.progress("provenance: signed by key %s", env.Signatures[0].KeyID[:16])
	return vmdir.WriteJSON(c.st.path(vmdir.SignedProvenance), env)
}

func (c *conversion) provenanceFile() string {
	if c.o.SignKey != nil {
		return vmdir.SignedProvenance
	}
	return vmdir.Provenance
}

// dependencies are what the conversion read: the image (manifest, config
// and layers), the parts, c2vm itself.
func (c *conversion) dependencies() ([]provenance.Resource, error) {
	deps := []provenance.Resource{{Name: "image", URI: c.o.Image, Digest: digestMap(c.img.ManifestDigest),
		Annotations: map[string]string{"config": c.img.ConfigDigest.String(), "platform": platformString(c.img)}}}
	for i, l := range c.img.Layers {
		if l.Digest != "" {
			deps = append(deps, provenance.Resource{Name: fmt.Sprintf("image layer %d", i+1), Digest: digestMap(l.Digest),
				Annotations: map[string]string{"mediaType": l.MediaType}})
		}
	}
	for _, p := range c.parts {
		deps = append(deps, p.resource())
	}
	self, err := selfDigest()
	if err != nil {
		return nil, fmt.Errorf("hashing c2vm itself: %w", err)
	}
	return append(deps, provenance.Resource{Name: "c2vm", URI: "pkg:golang/github.com/c2vm/c2vm@" + c.o.Version,
		Digest: map[string]string{"sha256": self}}), nil
}

func digestMap(d digest.Digest) map[string]string {
	return map[string]string{d.Algorithm().String(): d.Encoded()}
}

// selfDigest is the sha256 of the running executable, read once.
var selfDigest = sync.OnceValues(func() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	a, err := vmdir.DigestFile(p)
	return a.SHA256, err
})

// addPart records a part; sha256 of data when data is given.
func (c *conversion) addPart(p part, data []byte) {
	if data != nil {
		sum := sha256.Sum256(data)
		p.sha256 = hex.EncodeToString(sum[:])
	}
	c.parts = append(c.parts, p)
}

// kernelPart describes where the kernel came from: Debian's package (with
// the InRelease and Packages.xz it was checked against), a kernel image,
// a file given by --kernel (a .deb: the package its control file names),
// or the image's own /boot (the output kernel's digest).
func (c *conversion) kernelPart(version, debArch string) (part, error) {
	p := part{role: "kernel", name: "linux", version: version, purpose: "OPERATING-SYSTEM"}
	switch {
	case c.kernelDebian != nil:
		d := c.kernelDebian
		p.name, p.version, p.sha256 = d.Package, d.Version, d.SHA256
		p.fileName = d.Package + "_" + d.Version + "_" + debArch + ".deb"
		p.purl = "pkg:deb/debian/" + d.Package + "@" + url.PathEscape(d.Version) + "?arch=" + debArch
		p.annotations = map[string]string{"mirror": d.Mirror, "suite": d.Suite, "inRelease.sha256": d.InRelease, "packages.sha256": d.Packages}
	case c.kernelImage != nil:
		p.uri, p.sha256 = c.kernelImage.Ref, digest.Digest(c.kernelImage.ManifestDigest).Encoded()
	case c.kernelRef != "" && isRegular(c.kernelRef):
		a, err := vmdir.DigestFile(c.kernelRef)
		if err != nil {
			return p, err
		}
		p.sha256, p.uri = a.SHA256, c.kernelRef
		if d, err := kernel.DebControl(c.kernelRef); err == nil {
			// Named by its control file, as Debian names it, whatever the
			// file is called here (/kernel.deb in a container).
			p.name, p.version = d.Package, d.Version
			p.fileName = d.Package + "_" + d.Version + "_" + d.Architecture + ".deb"
			p.purl = "pkg:deb/debian/" + d.Package + "@" + url.PathEscape(d.Version) + "?arch=" + d.Architecture
		} else {
			p.fileName = filepath.Base(c.kernelRef)
		}
	default:
		a, err := c.digest(vmdir.Kernel)
		if err != nil {
			return p, err
		}
		p.sha256, p.uri = a.SHA256, c.kernelSource()
	}
	return p, nil
}

func isRegular(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// writeAttestations keeps the in-toto statements BuildKit attached to the
// image (its SBOM, its provenance) beside c2vm's own, as
// buildkit-<n>.intoto.json in the attestation manifest's order: artifacts
// like the others, so the provenance covers them too.
func (c *conversion) writeAttestations(context.Context) error {
	atts, err := c.img.Attestations()
	if err != nil {
		return fmt.Errorf("image attestations: %w", err)
	}
	for i, a := range atts {
		name := vmdir.BuildKitAttestation(i)
		if err := os.WriteFile(c.st.path(name), a.Data, 0o644); err != nil {
			return err
		}
		c.o.progress("attestation: %s kept as %s", a.PredicateType, name)
	}
	return nil
}
