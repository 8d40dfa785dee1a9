package image

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DockerManifest is one entry of a `docker save` manifest.json.
type DockerManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// ParseDockerManifest parses a `docker save` manifest.json, checking every
// path in it stays inside the archive.
func ParseDockerManifest(b []byte) ([]DockerManifest, error) {
	var ms []DockerManifest
	if err := json.Unmarshal(b, &ms); err != nil {
		return nil, fmt.Errorf("manifest.json: %w: %w", ErrNotImage, err)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("manifest.json lists no image: %w", ErrNotImage)
	}
	for i, m := range ms {
		if m.Config == "" {
			return nil, fmt.Errorf("manifest.json entry %d has no Config: %w", i, ErrCorrupt)
		}
		for _, p := range append([]string{m.Config}, m.Layers...) {
			if _, err := cleanName(p); err != nil {
				return nil, fmt.Errorf("manifest.json entry %d: %w", i, err)
			}
		}
	}
	return ms, nil
}

// selectDocker picks the entry named by a RepoTag, a bare tag, or @N.
func selectDocker(ms []DockerManifest, name string) (DockerManifest, error) {
	if n, ok := strings.CutPrefix(name, "@"); ok {
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= len(ms) {
			return DockerManifest{}, fmt.Errorf("%w: @%s: the archive holds %d images", ErrNoSuchImage, n, len(ms))
		}
		return ms[i], nil
	}
	var tags []string
	for _, m := range ms {
		for _, t := range m.RepoTags {
			tags = append(tags, t)
			if name != "" && (t == name || strings.HasSuffix(t, "/"+name) || strings.HasSuffix(t, ":"+name) && !strings.Contains(name, ":")) {
				return m, nil
			}
		}
	}
	if name != "" {
		return DockerManifest{}, fmt.Errorf("%w: no image tagged %q; the archive holds: %s", ErrNoSuchImage, name, orNone(tags))
	}
	if len(ms) > 1 {
		return DockerManifest{}, fmt.Errorf("%w: the archive holds %d images (%s); name one as PATH:TAG or PATH:@N", ErrAmbiguous, len(ms), orNone(tags))
	}
	return ms[0], nil
}

// resolveDocker reads a legacy `docker save` archive. Its layers have no
// compressed digests; each is verified against the config's diff_ids, and
// the config against its file name when that is a digest.
func resolveDocker(s store, name string, opts Options) (*Image, error) {
	b, err := readAll(s, "manifest.json")
	if err != nil {
		return nil, err
	}
	ms, err := ParseDockerManifest(b)
	if err != nil {
		return nil, err
	}
	m, err := selectDocker(ms, name)
	if err != nil {
		return nil, err
	}
	cb, err := readAll(s, m.Config)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cd := digest.SHA256.FromBytes(cb)
	if want := configDigestFromName(m.Config); want != "" && want != cd {
		return nil, fmt.Errorf("config %s: %w: got %s", m.Config, ErrDigestMismatch, cd)
	}
	cfg, err := parseConfig(cb)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config, err)
	}
	c := candidate{platform: &cfg.Platform}
	if _, err := choosePlatform(s, []candidate{c}, opts.Platform); err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("manifest.json lists %d layers, the config %d diff_ids: %w", len(m.Layers), len(cfg.RootFS.DiffIDs), ErrCorrupt)
	}
	if len(m.Layers) > maxLayers {
		return nil, fmt.Errorf("manifest.json lists %d layers, over the limit of %d: %w", len(m.Layers), maxLayers, ErrTooLarge)
	}
	if err := checkDiffIDs(cfg.RootFS.DiffIDs); err != nil {
		return nil, fmt.Errorf("config %s: %w", m.Config, err)
	}
	img := &Image{ConfigDigest: cd, Config: cfg, Platform: cfg.Platform}
	// A legacy archive has no manifest blob: identify it by the digest of
	// an equivalent OCI manifest's layer list (config digest + diff_ids).
	img.ManifestDigest = digest.SHA256.FromString(cd.String() + "\n" + joinDigests(cfg.RootFS.DiffIDs))
	for i, p := range m.Layers {
		if !s.exists(p) {
			return nil, fmt.Errorf("layer %s: %w", p, ErrMissingBlob)
		}
		img.Layers = append(img.Layers, Layer{DiffID: cfg.RootFS.DiffIDs[i], MediaType: ocispec.MediaTypeImageLayer, s: s, path: p})
	}
	return img, nil
}

func configDigestFromName(p string) digest.Digest {
	base := p[strings.LastIndexByte(p, '/')+1:]
	base = strings.TrimSuffix(base, ".json")
	d := digest.NewDigestFromEncoded(digest.SHA256, base)
	if d.Validate() != nil {
		return ""
	}
	return d
}

func joinDigests(ds []digest.Digest) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}
