package image

import (
	"context"
	"fmt"

	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Index is an image opened once for all its platforms: one archive index,
// one registry session and login. Each platform's Image reads its blobs
// through that one store, so a blob two platforms share is downloaded
// once from a registry (the remote store spools each digest once and
// serves later opens from the spool); a local layout or archive is read in
// place, where a second read of a shared layer costs a page-cache hit.
//
//	x, err := image.OpenIndex(ctx, "oci:app", image.Options{})
//	defer x.Close()
//	for i, p := range x.Platforms { img, err := x.Image(i); ... }
type Index struct {
	Ref string
	// Digest is what the platforms were listed from: the one index or
	// manifest index.json (or the registry reference) names, else
	// index.json's own digest; "" for a legacy docker-archive, which has
	// none.
	Digest digest.Digest
	// Platforms are the Linux platforms the image offers, in the index's
	// order, attestation manifests left out (see isAttestation).
	Platforms []ocispec.Platform
	cands     []candidate // Platforms' manifests; nil for a docker-archive
	single    *Image      // a docker-archive's one image
	store     store
	ctx       context.Context
}

// OpenIndex opens the image ref names and lists its platforms without
// choosing one (opts.Platform is not used).
func OpenIndex(ctx context.Context, ref string, opts Options) (*Index, error) {
	s, t, name, what, err := openStore(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	x, err := listIndex(s, t, name)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("image %s: %w", what, err)
	}
	x.Ref, x.store, x.ctx = ref, s, ctx
	return x, nil
}

func listIndex(s store, t Transport, name string) (*Index, error) {
	docker, err := isDockerLayout(s, t, name)
	if err != nil {
		return nil, err
	}
	if docker {
		img, err := resolveDocker(s, name, Options{})
		if err != nil {
			return nil, err
		}
		p := img.Platform
		if p.OS == "" {
			p.OS = "linux" // as choosePlatform takes it
		}
		return &Index{Platforms: []ocispec.Platform{p}, single: img}, nil
	}
	cands, from, err := listOCI(s, name)
	if err != nil {
		return nil, err
	}
	linux, err := linuxCandidates(s, cands)
	if err != nil {
		return nil, err
	}
	x := &Index{Digest: from, cands: linux}
	for _, c := range linux {
		x.Platforms = append(x.Platforms, *c.platform)
	}
	return x, nil
}

// Match finds the platform want (os/arch[/variant]) names, as a
// one-platform open would (matchPlatform), and returns its index in
// Platforms.
func (x *Index) Match(want string) (int, error) {
	spec, err := platforms.Parse(want)
	if err != nil {
		return -1, fmt.Errorf("--platform %q: %w", want, err)
	}
	if i := matchPlatform(x.Platforms, spec); i >= 0 {
		return i, nil
	}
	return -1, fmt.Errorf("%w: no manifest for %s; the image offers %s", ErrNoPlatform, platforms.Format(spec), formatAll(x.Platforms))
}

func formatAll(ps []ocispec.Platform) string {
	cands := make([]candidate, len(ps))
	for i := range ps {
		cands[i].platform = &ps[i]
	}
	return offered(cands)
}

// Image resolves the image of Platforms[i]: its manifest and config are
// read now, its layers when opened. Closing it leaves the Index open.
func (x *Index) Image(i int) (*Image, error) {
	if i < 0 || i >= len(x.Platforms) {
		return nil, fmt.Errorf("image %s: platform %d of %d: %w", x.Ref, i, len(x.Platforms), ErrNoPlatform)
	}
	var img *Image
	if x.single != nil {
		cp := *x.single
		cp.Layers = append([]Layer(nil), x.single.Layers...)
		img = &cp
	} else {
		var err error
		if img, err = loadManifest(x.store, x.cands[i]); err != nil {
			return nil, fmt.Errorf("image %s %s: %w", x.Ref, platforms.Format(x.Platforms[i]), err)
		}
		img.Platforms = x.Platforms
	}
	img.Ref = x.Ref
	img.store = sharedStore{x.store}
	img.setContext(x.ctx)
	return img, nil
}

// Close releases the archive, directory or registry spool.
func (x *Index) Close() error { return x.store.Close() }

// sharedStore is an Index's store as one of its Images holds it: closing
// the image leaves the store open for the others.
type sharedStore struct{ store }

func (sharedStore) Close() error { return nil }
