package vmimage

import (
	"fmt"

	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// findPlatform is the index entry of platform p, exactly (normalised as
// containerd does: linux/arm64/v8 is linux/arm64).
func findPlatform(im *v1.IndexManifest, p ocispec.Platform) (v1.Descriptor, error) {
	want := platforms.Normalize(p)
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		got := platforms.Normalize(ociPlatform(d.Platform))
		if got.OS == want.OS && got.Architecture == want.Architecture && got.Variant == want.Variant {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("the index has no %s image", platforms.Format(want))
}

func ociPlatform(p *v1.Platform) ocispec.Platform {
	if p == nil {
		return ocispec.Platform{}
	}
	return ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant, OSVersion: p.OSVersion}
}
