package vmimage

import (
	"context"
	"fmt"
	"strings"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/c2vm/c2vm/image"
	"github.com/c2vm/c2vm/vmdir"
)

// Result is what Push or Pull did.
type Result struct {
	// Ref is the reference pushed or pulled, Digest the manifest's (one
	// platform) or the index's (several) digest.
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Pinned is Ref's repository at Digest: what a cluster should run.
	Pinned string `json:"pinned"`
	// Platforms are the platforms pushed or pulled.
	Platforms []string `json:"platforms"`
	// Uploaded is how many layer bytes a push sent (0 when the registry
	// had every layer).
	Uploaded int64 `json:"uploaded"`
	// Dir is the directory pushed or written.
	Dir string `json:"dir"`
	// Volumes are the data-disk images pushed for the VOLUMEs.
	Volumes []VolumeResult `json:"volumes,omitempty"`
	// Manifest is a pushed directory's (the first platform's) manifest.json.
	Manifest *vmdir.Manifest `json:"-"`
}

// ParseRef reads docker://[REGISTRY/]REPO[:TAG|@DIGEST], the only
// transport a push or pull takes.
func ParseRef(ref string, insecure bool) (name.Reference, error) {
	s, ok := strings.CutPrefix(ref, string(image.TransportDocker)+"://")
	if !ok {
		return nil, fmt.Errorf("%s: want docker://[REGISTRY/]REPO[:TAG|@DIGEST]", ref)
	}
	var o []name.Option
	if insecure {
		o = append(o, name.Insecure)
	}
	r, err := name.ParseReference(s, o...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return r, nil
}

// remoteRef is ref parsed, with the registry client's options.
func remoteRef(ctx context.Context, ref string, ro image.Options) (name.Reference, []remote.Option, error) {
	r, err := ParseRef(ref, ro.InsecureTLS)
	if err != nil {
		return nil, nil, err
	}
	opts, err := image.RemoteOptions(ctx, ro)
	return r, opts, err
}

// Push builds the image of dir and writes it to ref: blobs the registry
// lacks first, the manifest (or index) last, so a failure leaves no tag.
func Push(ctx context.Context, dir, ref string, o Options, ro image.Options) (*Result, error) {
	r, opts, err := remoteRef(ctx, ref, ro)
	if err != nil {
		return nil, err
	}
	vm, err := Build(dir, o)
	if err != nil {
		return nil, err
	}
	defer vm.Close()
	// The data disks first: the VM's tag appears only when all is there.
	vols, err := writeVolumes(r, vm.Volumes, opts)
	if err != nil {
		return nil, fmt.Errorf("pushing %s: %w", dir, image.ExplainRegistry(r.Context(), err))
	}
	if vm.Index != nil {
		err = remote.WriteIndex(r, vm.Index, opts...)
	} else {
		err = remote.Write(r, vm.Image, opts...)
	}
	if err != nil {
		return nil, fmt.Errorf("pushing %s: %w", dir, image.ExplainRegistry(r.Context(), err))
	}
	d, err := vm.Digest()
	if err != nil {
		return nil, err
	}
	res := result(r, d, dir)
	if len(o.Referrers) > 0 {
		desc, err := partial.Descriptor(vm.Taggable().(partial.Describable))
		if err != nil {
			return nil, err
		}
		if err := WriteReferrers(r.Context().Digest(d.String()), *desc, o.Referrers, opts...); err != nil {
			return nil, fmt.Errorf("pushing referrers of %s: %w", res.Pinned, image.ExplainRegistry(r.Context(), err))
		}
	}
	res.Uploaded, res.Manifest, res.Volumes = vm.Uploaded(), vm.Manifest, vols
	res.Platforms, err = vm.platforms()
	return res, err
}

func result(r name.Reference, d v1.Hash, dir string) *Result {
	return &Result{Ref: r.String(), Digest: d.String(), Pinned: r.Context().Digest(d.String()).String(), Dir: dir, Platforms: []string{}}
}

// platforms names the pushed platforms.
func (vm *VM) platforms() ([]string, error) {
	if vm.Index != nil {
		var out []string
		for _, d := range vm.Platforms {
			out = append(out, d.Platform.String())
		}
		return out, nil
	}
	cf, err := vm.Image.ConfigFile()
	if err != nil {
		return nil, err
	}
	return []string{cf.Platform().String()}, nil
}

// Pull fetches the VM image at ref and writes its directory to dir: one
// platform's (ro.Platform, or the only one), or every platform's of an
// index when ro.Platform is "".
func Pull(ctx context.Context, ref, dir string, ro image.Options) (*Result, error) {
	r, opts, err := remoteRef(ctx, ref, ro)
	if err != nil {
		return nil, err
	}
	desc, err := remote.Get(r, opts...)
	if err != nil {
		return nil, image.ExplainRegistry(r.Context(), err)
	}
	res := result(r, desc.Digest, dir)
	if desc.MediaType.IsIndex() {
		err = pullIndex(desc, dir, ro.Platform, res)
	} else {
		err = pullImage(desc, dir, ro.Platform, res)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, image.ExplainRegistry(r.Context(), err))
	}
	return res, nil
}

func pullIndex(desc *remote.Descriptor, dir, platform string, res *Result) error {
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	im, err := vmIndexManifest(idx)
	if err != nil {
		return err
	}
	if platform == "" {
		for _, d := range im.Manifests {
			res.Platforms = append(res.Platforms, d.Platform.String())
		}
		return RestoreIndex(idx, dir)
	}
	p, err := platforms.Parse(platform)
	if err != nil {
		return err
	}
	d, err := findPlatform(im, p)
	if err != nil {
		return err
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return err
	}
	res.Platforms = []string{d.Platform.String()}
	return Restore(img, dir)
}

func pullImage(desc *remote.Descriptor, dir, platform string, res *Result) error {
	img, err := desc.Image()
	if err != nil {
		return err
	}
	if _, err := vmManifest(img); err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if platform != "" {
		want, err := platforms.Parse(platform)
		if err != nil {
			return err
		}
		if !platforms.NewMatcher(want).Match(platforms.Normalize(ociPlatform(cf.Platform()))) {
			return fmt.Errorf("the image is %s, not %s", cf.Platform(), platforms.Format(want))
		}
	}
	res.Platforms = []string{cf.Platform().String()}
	return Restore(img, dir)
}
