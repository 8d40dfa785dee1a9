package image

import (
	_ "crypto/sha512" // go-digest's sha384 and sha512 need it linked in
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Media types of manifests and indexes, OCI's and Docker's schema 2.
const (
	mediaTypeDockerManifest      = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList  = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mediaTypeDockerConfig        = "application/vnd.docker.container.image.v1+json"
	annotationContainerdName     = "io.containerd.image.name"
	maxIndexDepth                = 8
	// maxDescriptors bounds the index entries walked below the selected
	// ones, so an index that fans out as a DAG cannot make the walk
	// exponential; a multi-platform image with attestations has tens.
	maxDescriptors = 4096
	// maxLayers is far above the 125 layers Docker's layer store chains
	// (moby layer/layer_store.go, maxLayerDepth).
	maxLayers = 1024
)

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == mediaTypeDockerManifestList
}

func isManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == mediaTypeDockerManifest
}

// checkDescriptor refuses a descriptor whose digest or size no blob can
// have, before it is used.
func checkDescriptor(what string, d ocispec.Descriptor) error {
	if err := checkDigest(d.Digest); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if d.Size < 0 {
		return fmt.Errorf("%s %s: size %d: %w", what, d.Digest, d.Size, ErrCorrupt)
	}
	return nil
}

// readBlob reads a JSON blob (index, manifest, config) and checks it
// against its descriptor before anything parses it.
func readBlob(s store, d ocispec.Descriptor) ([]byte, error) {
	if err := checkDescriptor("blob", d); err != nil {
		return nil, err
	}
	if d.Size > maxJSON {
		return nil, fmt.Errorf("blob %s: %d bytes, over the %d MiB limit for a JSON document: %w", d.Digest, d.Size, maxJSON>>20, ErrTooLarge)
	}
	p, _ := blobPath(d.Digest)
	b, err := readAll(s, p)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s: %w: %d bytes, descriptor says %d", d.Digest, ErrDigestMismatch, len(b), d.Size)
	}
	if got := d.Digest.Algorithm().FromBytes(b); got != d.Digest {
		return nil, fmt.Errorf("blob %s: %w: got %s", d.Digest, ErrDigestMismatch, got)
	}
	return b, nil
}

// candidate is a manifest reachable from the index, with the platform the
// index claims for it (nil: none claimed; read from the config).
type candidate struct {
	desc     ocispec.Descriptor
	platform *ocispec.Platform
	// attestation is BuildKit's attestation manifest for desc, when the
	// index carries one.
	attestation *ocispec.Descriptor
}

func resolveOCI(s store, name string, opts Options) (*Image, error) {
	cands, _, err := listOCI(s, name)
	if err != nil {
		return nil, err
	}
	c, err := choosePlatform(s, cands, opts.Platform)
	if err != nil {
		return nil, err
	}
	img, err := loadManifest(s, c)
	if err != nil {
		return nil, err
	}
	for _, c := range cands { // choosePlatform filled in every platform
		img.Platforms = append(img.Platforms, *c.platform)
	}
	return img, nil
}

// listOCI reads index.json and walks it to the image manifests of the
// image called name. It also returns the digest of the index they were
// listed from: the one index index.json names, else index.json's own.
func listOCI(s store, name string) ([]candidate, digest.Digest, error) {
	b, err := readAll(s, "index.json")
	if err != nil {
		return nil, "", err // names index.json
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, "", fmt.Errorf("index.json: %w: %w", ErrNotImage, err)
	}
	top, err := selectByName(idx.Manifests, name)
	if err != nil {
		return nil, "", err
	}
	w := &walk{s: s, seen: map[string]bool{}}
	for _, d := range top {
		if err := w.collect(d, 0); err != nil {
			return nil, "", err
		}
	}
	if len(w.out) == 0 {
		return nil, "", fmt.Errorf("%w: the index lists no image manifest", ErrNotImage)
	}
	w.matchAttestations()
	// What the reference resolves to: its one descriptor when index.json
	// names one (a nested index, or a single manifest, which is also all
	// a registry store's made-up index.json holds), else index.json.
	from := digest.SHA256.FromBytes(b)
	if len(top) == 1 {
		from = top[0].Digest
	}
	return w.out, from, nil
}

// refName is how an index entry names its image.
func refName(d ocispec.Descriptor) string {
	if n := d.Annotations[ocispec.AnnotationRefName]; n != "" {
		return n
	}
	return d.Annotations[annotationContainerdName]
}

// selectByName keeps the index entries named name ("latest" matches both
// "latest" and "example.com/app:latest"). Without a name, the entries must
// be one image (one distinct name, or none).
func selectByName(ds []ocispec.Descriptor, name string) ([]ocispec.Descriptor, error) {
	names := map[string]bool{}
	var out []ocispec.Descriptor
	for _, d := range ds {
		n := refName(d)
		if n != "" {
			names[n] = true
		}
		if name == "" || n == name || strings.HasSuffix(n, ":"+name) || d.Digest.String() == name {
			out = append(out, d)
		}
	}
	list := sortedKeys(names)
	if name != "" && len(out) == 0 {
		return nil, fmt.Errorf("no image named %q; the archive holds: %s: %w", name, orNone(list), ErrNoSuchImage)
	}
	if name == "" && len(names) > 1 {
		return nil, fmt.Errorf("%w: the archive holds %d images (%s); name one as PATH:REF", ErrAmbiguous, len(list), strings.Join(list, ", "))
	}
	return out, nil
}

func orNone(l []string) string {
	if len(l) == 0 {
		return "no named images"
	}
	return strings.Join(l, ", ")
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// walk collects the image manifests below an index, reading each nested
// index and listing each manifest once however many paths reach it.
type walk struct {
	s       store
	seen    map[string]bool // digest and claimed platform
	visited int
	out     []candidate
	attest  []ocispec.Descriptor // BuildKit's attestation manifests
}

// collect walks index → index → manifest (as buildx nests them), verifying
// every index it reads.
func (w *walk) collect(d ocispec.Descriptor, depth int) error {
	if w.visited++; w.visited > maxDescriptors {
		return fmt.Errorf("index fans out to more than %d descriptors: %w", maxDescriptors, ErrTooLarge)
	}
	if err := checkDescriptor("descriptor", d); err != nil {
		return err
	}
	key := d.Digest.String()
	if d.Platform != nil {
		key += " " + platforms.Format(*d.Platform)
	}
	if w.seen[key] {
		return nil
	}
	switch {
	case isManifest(d.MediaType):
		w.seen[key] = true
		if !isAttestation(d) {
			w.out = append(w.out, candidate{desc: d, platform: d.Platform})
		} else {
			w.attest = append(w.attest, d)
		}
		return nil
	case isIndex(d.MediaType):
		w.seen[key] = true
		return w.index(d, depth)
	case d.MediaType == mediaTypeDockerSchema1 || d.MediaType == mediaTypeDockerSchema1Signed:
		return fmt.Errorf("manifest %s: Docker schema 1 (%s): %w", d.Digest, d.MediaType, ErrUnsupported)
	case d.MediaType == "":
		// Some writers omit the media type: sniff the blob.
		if err := w.sniff(&d); err != nil {
			return err
		}
		w.visited--
		return w.collect(d, depth)
	}
	return nil // other artifacts (signatures, SBOMs) are not images
}

// index reads the index d and collects what it lists; a manifest without
// a platform of its own takes the one d was listed with.
func (w *walk) index(d ocispec.Descriptor, depth int) error {
	if depth >= maxIndexDepth {
		return fmt.Errorf("index %s: nested more than %d deep: %w", d.Digest, maxIndexDepth, ErrCorrupt)
	}
	b, err := readBlob(w.s, d)
	if err != nil {
		return err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("index %s: %w: %w", d.Digest, ErrCorrupt, err)
	}
	for _, c := range idx.Manifests {
		if c.Platform == nil && d.Platform != nil && isManifest(c.MediaType) {
			c.Platform = d.Platform
		}
		if err := w.collect(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// sniff gives d, listed without a media type, the one its blob's shape
// says: an index when it lists manifests, else an image manifest.
func (w *walk) sniff(d *ocispec.Descriptor) error {
	b, err := readBlob(w.s, *d)
	if err != nil {
		return err
	}
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return fmt.Errorf("blob %s: %w: %w", d.Digest, ErrCorrupt, err)
	}
	d.MediaType = ocispec.MediaTypeImageManifest
	if probe.Manifests != nil {
		d.MediaType = ocispec.MediaTypeImageIndex
	}
	return nil
}

// isAttestation recognises BuildKit's attestation manifests.
func isAttestation(d ocispec.Descriptor) bool {
	if d.Annotations["vnd.docker.reference.type"] == "attestation-manifest" {
		return true
	}
	return d.Platform != nil && d.Platform.OS == "unknown" && d.Platform.Architecture == "unknown"
}

// manifest is an OCI or Docker schema 2 image manifest.
func loadManifest(s store, c candidate) (*Image, error) {
	b, err := readBlob(s, c.desc)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w: %w", c.desc.Digest, ErrCorrupt, err)
	}
	if err := checkArtifact(m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", c.desc.Digest, err)
	}
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("manifest %s has %d layers, over the limit of %d: %w", c.desc.Digest, len(m.Layers), maxLayers, ErrTooLarge)
	}
	cfgBytes, err := readBlob(s, m.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(cfgBytes)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	img := &Image{ManifestDigest: c.desc.Digest, ConfigDigest: m.Config.Digest, Config: cfg, Platform: cfg.Platform, attestation: c.attestation}
	if img.Platform.Architecture == "" && c.platform != nil {
		img.Platform = *c.platform
	}
	if len(cfg.RootFS.DiffIDs) != 0 && len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest %s has %d layers, its config %d diff_ids: %w", c.desc.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs), ErrCorrupt)
	}
	if err := checkDiffIDs(cfg.RootFS.DiffIDs); err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	for i, l := range m.Layers {
		var diffID digest.Digest
		if i < len(cfg.RootFS.DiffIDs) {
			diffID = cfg.RootFS.DiffIDs[i]
		}
		if err := checkDescriptor(fmt.Sprintf("layer %d", i+1), l); err != nil {
			return nil, err
		}
		p, _ := blobPath(l.Digest)
		if !s.exists(p) {
			return nil, fmt.Errorf("layer %s: %w", l.Digest, ErrMissingBlob)
		}
		img.Layers = append(img.Layers, Layer{Digest: l.Digest, Size: l.Size, MediaType: l.MediaType, DiffID: diffID, s: s, path: p})
	}
	return img, nil
}

// artifacts names the config media types of OCI artifacts that are not
// container images, as their projects register them.
var artifacts = map[string]string{
	"application/vnd.cncf.helm.config.v1+json":         "a Helm chart",
	"application/vnd.wasm.config.v0+json":              "a WASM module",
	"application/vnd.module.wasm.config.v1+json":       "a WASM module",
	"application/vnd.dev.cosign.simplesigning.v1+json": "a cosign signature",
	"application/vnd.sylabs.sif.config.v1+json":        "a Singularity image",
	"application/vnd.oci.empty.v1+json":                "an OCI artifact",
}

// checkArtifact refuses a manifest whose config is not an image config,
// naming what it is, before its config or layers are read.
func checkArtifact(m ocispec.Manifest) error {
	mt := m.Config.MediaType
	switch {
	case mt == ocispec.MediaTypeImageConfig || mt == mediaTypeDockerConfig || mt == "" && m.ArtifactType == "":
		return nil
	case artifacts[mt] != "":
		return fmt.Errorf("%s (config %s), not a container image: %w", artifacts[mt], mt, ErrNotImage)
	case m.ArtifactType != "":
		return fmt.Errorf("an artifact of type %s, not a container image: %w", m.ArtifactType, ErrNotImage)
	}
	return fmt.Errorf("config of media type %s, not a container image's: %w", mt, ErrNotImage)
}

// checkDiffIDs refuses a diff_id no layer can have before a layer is
// opened with it.
func checkDiffIDs(ids []digest.Digest) error {
	for i, d := range ids {
		if err := checkDigest(d); err != nil {
			return fmt.Errorf("diff_id %d: %w", i+1, err)
		}
	}
	return nil
}

// parseConfig reads an OCI or Docker image config (the same JSON shape for
// what we use).
func parseConfig(b []byte) (ocispec.Image, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(b, &cfg); err != nil {
		return cfg, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return cfg, nil
}
