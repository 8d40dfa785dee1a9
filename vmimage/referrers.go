package vmimage

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// WriteReferrers pushes artifacts (an SBOM, a provenance statement:
// issue 22) as OCI 1.1 referrers of the pushed VM subject, each by its
// digest: go-containerregistry sets their subject and, on a registry
// without the referrers API, keeps the fallback tag index
// (sha256-<hex>) up to date.
func WriteReferrers(subject name.Digest, desc v1.Descriptor, artifacts []v1.Image, opts ...remote.Option) error {
	for i, a := range artifacts {
		img, ok := mutate.Subject(a, desc).(v1.Image)
		if !ok {
			return fmt.Errorf("referrer %d: not an image", i)
		}
		d, err := img.Digest()
		if err != nil {
			return fmt.Errorf("referrer %d: %w", i, err)
		}
		if err := remote.Write(subject.Context().Digest(d.String()), img, opts...); err != nil {
			return fmt.Errorf("referrer %d: %w", i, err)
		}
	}
	return nil
}
