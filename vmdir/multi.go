package vmdir

import ocispec "github.com/opencontainers/image-spec/specs-go/v1"

// MultiManifest is DIR/manifest.json of a multi-platform conversion: each
// platform is a complete output directory in DIR/<os>-<arch>[-<variant>],
// with its own manifest.json, whose digest is recorded here.
type MultiManifest struct {
	SchemaVersion int             `json:"schemaVersion"`
	C2VMVersion   string          `json:"c2vmVersion"`
	Image         IndexInfo       `json:"image"`
	Platforms     []PlatformEntry `json:"platforms"`
	// Skipped are the platforms "all" left out: c2vm makes no VM for them.
	Skipped []SkippedPlatform `json:"skipped,omitempty"`
}

// IndexInfo identifies the source image of several platforms.
type IndexInfo struct {
	Ref string `json:"ref"`
	// IndexDigest is the index the platforms were chosen from (see
	// image.Index.Digest); "" for a docker-archive.
	IndexDigest string `json:"indexDigest,omitempty"`
}

// PlatformEntry is one platform's output directory.
type PlatformEntry struct {
	Platform       ocispec.Platform `json:"platform"`
	Dir            string           `json:"dir"` // relative to the top directory
	ManifestDigest string           `json:"manifestDigest"`
	ConfigDigest   string           `json:"configDigest"`
	// Manifest is the sha256 and size of Dir/manifest.json.
	Manifest Artifact `json:"manifest"`
}

// SkippedPlatform is a platform "all" did not convert, and why.
type SkippedPlatform struct {
	Platform ocispec.Platform `json:"platform"`
	Reason   string           `json:"reason"`
}
