package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// choosePlatform picks the candidate for want ("" = the only one, else
// the host's). Platform matching is containerd's: linux/arm64 matches
// linux/arm64/v8.
func choosePlatform(s store, cands []candidate, want string) (candidate, error) {
	for i := range cands {
		if cands[i].platform == nil {
			p, err := configPlatform(s, cands[i].desc)
			if err != nil {
				return candidate{}, err
			}
			cands[i].platform = &p
		}
	}
	if want == "" && len(cands) == 1 {
		return cands[0], nil
	}
	var spec ocispec.Platform
	if want == "" {
		spec = platforms.DefaultSpec()
	} else {
		var err error
		if spec, err = platforms.Parse(want); err != nil {
			return candidate{}, fmt.Errorf("--platform %q: %w", want, err)
		}
	}
	m := platforms.NewMatcher(spec)
	for _, c := range cands {
		if m.Match(*c.platform) {
			return c, nil
		}
	}
	return candidate{}, fmt.Errorf("%w: no manifest for %s; the image offers %s", ErrNoPlatform, platforms.Format(spec), offered(cands))
}

func offered(cands []candidate) string {
	var l []string
	for _, c := range cands {
		l = append(l, platforms.Format(*c.platform))
	}
	sort.Strings(l)
	return strings.Join(l, ", ")
}

// configPlatform reads the platform an image config declares, for
// manifests the index gives none for.
func configPlatform(s store, d ocispec.Descriptor) (ocispec.Platform, error) {
	b, err := readBlob(s, d)
	if err != nil {
		return ocispec.Platform{}, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return ocispec.Platform{}, fmt.Errorf("manifest %s: %w: %v", d.Digest, ErrCorrupt, err)
	}
	cb, err := readBlob(s, m.Config)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("config: %w", err)
	}
	cfg, err := parseConfig(cb)
	if err != nil {
		return ocispec.Platform{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	return cfg.Platform, nil
}
