package image

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// choosePlatform picks the candidate for want ("" = the only Linux one,
// else the host's). Platform matching is containerd's: linux/arm64 matches
// linux/arm64/v8. c2vm makes Linux VMs, so only Linux images are offered
// (an image whose config names no OS is taken as Linux).
func choosePlatform(s store, cands []candidate, want string) (candidate, error) {
	linux, err := linuxCandidates(s, cands)
	if err != nil {
		return candidate{}, err
	}
	if want == "" && len(linux) == 1 {
		return linux[0], nil
	}
	var spec ocispec.Platform
	if want == "" {
		spec = platforms.DefaultSpec()
		spec.OS = "linux"
	} else {
		var err error
		if spec, err = platforms.Parse(want); err != nil {
			return candidate{}, fmt.Errorf("--platform %q: %w", want, err)
		}
	}
	ps := make([]ocispec.Platform, len(linux))
	for i, c := range linux {
		ps[i] = *c.platform
	}
	if i := matchPlatform(ps, spec); i >= 0 {
		return linux[i], nil
	}
	return candidate{}, fmt.Errorf("%w: no manifest for %s; the image offers %s", ErrNoPlatform, platforms.Format(spec), offered(cands))
}

// matchPlatform is the index in ps of the first platform spec names, by
// containerd's matcher (which normalises both: linux/arm64 is
// linux/arm64/v8), or -1. One rule for one platform and for several.
func matchPlatform(ps []ocispec.Platform, spec ocispec.Platform) int {
	m := platforms.NewMatcher(spec)
	for i, p := range ps {
		if m.Match(p) {
			return i
		}
	}
	return -1
}

// linuxCandidates fills in each candidate's platform (from its config when
// the index claims none; no OS is taken as Linux) and keeps the Linux ones.
func linuxCandidates(s store, cands []candidate) ([]candidate, error) {
	var linux []candidate
	for i := range cands {
		if cands[i].platform == nil {
			p, err := configPlatform(s, cands[i].desc)
			if err != nil {
				return nil, err
			}
			cands[i].platform = &p
		}
		if cands[i].platform.OS == "" {
			p := *cands[i].platform
			p.OS = "linux"
			cands[i].platform = &p
		}
		if cands[i].platform.OS == "linux" {
			linux = append(linux, cands[i])
		}
	}
	if len(linux) == 0 {
		return nil, fmt.Errorf("%w: no linux platform; the image offers %s", ErrNoPlatform, offered(cands))
	}
	return linux, nil
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
		return ocispec.Platform{}, fmt.Errorf("manifest %s: %w: %w", d.Digest, ErrCorrupt, err)
	}
	if err := checkArtifact(m); err != nil {
		return ocispec.Platform{}, fmt.Errorf("manifest %s: %w", d.Digest, err)
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
