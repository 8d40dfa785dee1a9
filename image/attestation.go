package image

import (
	"encoding/json"
	"fmt"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BuildKit's attestation manifests (docs.docker.com/build/metadata/
// attestations/attestation-storage): an index lists, beside each image
// manifest, a manifest annotated vnd.docker.reference.type
// attestation-manifest whose vnd.docker.reference.digest names the image
// manifest; its layers are in-toto statements (an SPDX SBOM, a SLSA
// provenance), each annotated with its predicate type.
const (
	annotationRefDigest     = "vnd.docker.reference.digest"
	annotationPredicateType = "in-toto.io/predicate-type"
	maxAttestations         = 64
)

// Attestation is one in-toto statement BuildKit attached to the image.
type Attestation struct {
	PredicateType string
	MediaType     string
	Digest        digest.Digest
	Data          []byte
}

// matchAttestations gives each image manifest the attestation manifest
// that names it.
func (w *walk) matchAttestations() {
	for i := range w.attest {
		d := &w.attest[i]
		for j := range w.out {
			if c := &w.out[j]; c.attestation == nil && c.desc.Digest.String() == d.Annotations[annotationRefDigest] {
				c.attestation = d
			}
		}
	}
}

// Attestations reads the in-toto statements BuildKit attached to the
// image (none when the index carries no attestation manifest for it),
// each blob checked against its digest and bounded as a JSON document.
func (img *Image) Attestations() ([]Attestation, error) {
	if img.attestation == nil {
		return nil, nil
	}
	b, err := readBlob(img.store, *img.attestation)
	if err != nil {
		return nil, fmt.Errorf("attestation manifest: %w", err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("attestation manifest %s: %w: %w", img.attestation.Digest, ErrCorrupt, err)
	}
	if len(m.Layers) > maxAttestations {
		return nil, fmt.Errorf("attestation manifest %s has %d layers, over %d: %w", img.attestation.Digest, len(m.Layers), maxAttestations, ErrTooLarge)
	}
	var out []Attestation
	for _, l := range m.Layers {
		data, err := readBlob(img.store, l)
		if err != nil {
			return nil, fmt.Errorf("attestation: %w", err)
		}
		out = append(out, Attestation{PredicateType: l.Annotations[annotationPredicateType], MediaType: l.MediaType, Digest: l.Digest, Data: data})
	}
	return out, nil
}
