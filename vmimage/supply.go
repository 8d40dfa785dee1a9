package vmimage

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/c2vm/c2vm/vmdir"
)

// Artifact types of the supply-chain referrers, as their ecosystems name
// them: SPDX's JSON, an in-toto statement, a DSSE envelope.
const (
	SPDXType   = "application/spdx+json"
	InTotoType = "application/vnd.in-toto+json"
	DSSEType   = "application/vnd.dsse.envelope.v1+json"
)

// SupplyChain is the SBOM and provenance of the VM directory dir (of each
// platform's directory, for several) as OCI artifacts to push as
// referrers of the VM (Options.Referrers): one layer each, the file,
// titled by its name, its type also the config's media type (how a
// registry without artifactType reports one). A directory converted
// before c2vm wrote them has none.
func SupplyChain(dir string) ([]v1.Image, error) {
	dirs, err := platformDirs(dir)
	if err != nil {
		return nil, err
	}
	var out []v1.Image
	for _, d := range dirs {
		m, err := vmdir.ReadManifest(d)
		if err != nil {
			return nil, err
		}
		for _, f := range [][2]string{{m.SBOM, SPDXType}, {m.Provenance, provenanceType(m.Provenance)}} {
			if f[0] == "" {
				continue
			}
			img, err := artifact(filepath.Join(d, f[0]), f[1])
			if err != nil {
				return nil, err
			}
			out = append(out, img)
		}
	}
	return out, nil
}

// platformDirs is dir, or each platform's directory of a top directory
// of several (its manifest.json read, not checked: Build checks them).
func platformDirs(dir string) ([]string, error) {
	_, err := vmdir.ReadManifest(dir)
	if !errors.Is(err, vmdir.ErrMultiPlatform) {
		return []string{dir}, err
	}
	b, err := os.ReadFile(filepath.Join(dir, vmdir.ManifestFile))
	if err != nil {
		return nil, err
	}
	var mm vmdir.MultiManifest
	if err := json.Unmarshal(b, &mm); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var dirs []string
	for _, p := range mm.Platforms {
		if !vmdir.IsPlainName(p.Dir) {
			return nil, fmt.Errorf("%s: platform directory %q is not a directory name", dir, p.Dir)
		}
		dirs = append(dirs, filepath.Join(dir, p.Dir))
	}
	return dirs, nil
}

func provenanceType(name string) string {
	if name == vmdir.SignedProvenance {
		return DSSEType
	}
	return InTotoType
}

func artifact(p, mt string) (v1.Image, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("referrer: %w", err)
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.MediaType(mt))
	return mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(b, types.MediaType(mt)),
		Annotations: map[string]string{"org.opencontainers.image.title": filepath.Base(p)}})
}
