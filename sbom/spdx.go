package sbom

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/github/go-spdx/v2/spdxexp"
)

// Component is a part of the VM that no package database lists: the
// kernel (its package), the guest init, the EFI stub.
type Component struct {
	Name     string
	Version  string
	SHA256   string // hex, of the file (a kernel's .deb when it came as one)
	FileName string // what the checksum is of
	PURL     string // "" when there is none
	Purpose  string // SPDX primaryPackagePurpose: OPERATING-SYSTEM, APPLICATION, FIRMWARE
	Supplier string
	Comment  string
}

// Document is what the SBOM describes: the VM made from Name (the image
// reference, at ImageDigest) with its root's packages and its components.
type Document struct {
	Name        string
	ImageDigest string // "sha256:…", the image manifest's
	Distro      Distro
	Packages    []Package
	Components  []Component
	Created     time.Time // SOURCE_DATE_EPOCH: no clock is read
	Tool        string    // "c2vm-VERSION"
}

// SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/), the fields c2vm
// writes.
type spdxDoc struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreation       `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreation struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string         `json:"name"`
	SPDXID           string         `json:"SPDXID"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	Supplier         string         `json:"supplier"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	PackageFileName  string         `json:"packageFileName,omitempty"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	SourceInfo       string         `json:"sourceInfo,omitempty"`
	LicenseConcluded string         `json:"licenseConcluded"`
	LicenseDeclared  string         `json:"licenseDeclared"`
	LicenseComments  string         `json:"licenseComments,omitempty"`
	CopyrightText    string         `json:"copyrightText"`
	Comment          string         `json:"comment,omitempty"`
	Purpose          string         `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

const (
	noAssertion = "NOASSERTION"
	vmID        = "SPDXRef-VM"
)

// WriteSPDX writes the document as SPDX 2.3 JSON. Its namespace is
// derived from its own content, so the same conversion gives the same
// bytes.
func (d Document) WriteSPDX(w io.Writer) error {
	doc := spdxDoc{SPDXVersion: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT",
		Name: d.Name, CreationInfo: spdxCreation{Created: d.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: " + d.Tool}},
		DocumentDescribes: []string{vmID}}
	vm := spdxPackage{Name: d.Name, SPDXID: vmID, VersionInfo: d.ImageDigest, Purpose: "CONTAINER",
		Comment: "the VM converted from this container image"}
	if hex, ok := strings.CutPrefix(d.ImageDigest, "sha256:"); ok {
		vm.Checksums = []spdxChecksum{{"SHA256", hex}}
	}
	doc.Packages = append(doc.Packages, unknowns(vm))
	for i, c := range d.Components {
		doc.Packages = append(doc.Packages, c.spdx(fmt.Sprintf("SPDXRef-Component-%d-%s", i+1, idSafe(c.Name))))
	}
	for i, p := range d.Packages {
		doc.Packages = append(doc.Packages, p.spdx(fmt.Sprintf("SPDXRef-Package-%s-%d-%s", p.Type, i+1, idSafe(p.Name)), d.Distro))
	}
	doc.Relationships = append(doc.Relationships, spdxRelationship{"SPDXRef-DOCUMENT", "DESCRIBES", vmID})
	for _, p := range doc.Packages[1:] {
		doc.Relationships = append(doc.Relationships, spdxRelationship{vmID, "CONTAINS", p.SPDXID})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(b)
	doc.DocumentNamespace = "https://c2vm.invalid/spdx/" + idSafe(d.Name) + "-" + hex.EncodeToString(sum[:16])
	b, err = json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (c Component) spdx(id string) spdxPackage {
	p := spdxPackage{Name: c.Name, SPDXID: id, VersionInfo: c.Version, PackageFileName: c.FileName,
		Purpose: c.Purpose, Comment: c.Comment, Supplier: supplier(c.Supplier)}
	if c.SHA256 != "" {
		p.Checksums = []spdxChecksum{{"SHA256", c.SHA256}}
	}
	if c.PURL != "" {
		p.ExternalRefs = []spdxRef{{"PACKAGE-MANAGER", "purl", c.PURL}}
	}
	return unknowns(p)
}

func (pk Package) spdx(id string, d Distro) spdxPackage {
	p := spdxPackage{Name: pk.Name, SPDXID: id, VersionInfo: pk.Version, Supplier: supplier(pk.Supplier),
		Purpose: "LIBRARY", ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", pk.PURL(d)}}}
	if pk.Source != "" {
		p.SourceInfo = "built from source package " + pk.Source
	}
	p.LicenseDeclared = noAssertion
	if pk.License != "" {
		if ok, _ := spdxexp.ValidateLicenses([]string{pk.License}); ok {
			p.LicenseDeclared = pk.License
		} else {
			p.LicenseComments = pk.Type + " database: " + pk.License
		}
	}
	return unknowns(p)
}

// unknowns fills the fields SPDX requires that c2vm cannot know.
func unknowns(p spdxPackage) spdxPackage {
	for _, f := range []*string{&p.Supplier, &p.LicenseConcluded, &p.LicenseDeclared, &p.CopyrightText, &p.DownloadLocation} {
		if *f == "" {
			*f = noAssertion
		}
	}
	return p
}

// supplier is SPDX's "Organization: NAME (EMAIL)" form of a maintainer's
// "NAME <EMAIL>".
func supplier(s string) string {
	if s == "" {
		return ""
	}
	s = strings.NewReplacer("<", "(", ">", ")").Replace(s)
	return "Organization: " + s
}

var notIDChar = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

// idSafe makes s fit an SPDX identifier's characters.
func idSafe(s string) string { return notIDChar.ReplaceAllString(s, "-") }
