// Package image opens container images — OCI layouts, OCI archives and
// `docker save` tarballs — resolves the manifest for a platform and gives
// its config and layers, verifying every blob's digest and size.
//
//	img, err := image.OpenContext(ctx, "oci-archive:app.tar:latest", image.Options{Platform: "linux/arm64"})
//	defer img.Close()
//	for _, l := range img.Layers { rc, err := l.Open(); ... } // uncompressed tar streams
//
// Every input is treated as hostile and read within bounds: only regular
// files (a FIFO or a link to /dev/zero is refused, never opened for long),
// sizes checked against descriptors before reading, JSON documents of at
// most 4 MiB, digests validated before use, index walks bounded in depth
// and fan-out, layers verified before they are decoded and refused when
// they inflate like a decompression bomb.
package image

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options select what to open; the zero value is the default.
type Options struct {
	// Platform is os/arch[/variant]; "" picks the image's only platform,
	// else the host's.
	Platform string
	// Creds is USER:PASSWORD for a docker:// registry; "" = as Docker and
	// skopeo find them (see Keychain).
	Creds string
	// InsecureTLS allows plain HTTP and unverified certificates for a
	// docker:// registry (skopeo's --tls-verify=false).
	InsecureTLS bool
	// Meter, when set, shows each docker:// blob download live: it gets
	// a name and the total bytes, is written the bytes, and is closed.
	Meter func(what string, total int64) io.WriteCloser
	// SpoolDir is where a docker-daemon: image's saved archive is kept
	// while it is read (unnamed, gone at Close); "" = the system's temp
	// dir. Convert gives the output's parent, which must have room for
	// the output anyway.
	SpoolDir string
	// StallTimeout fails a docker:// transfer (blob, manifest, token)
	// that makes no progress for that long; 0 = DefaultStallTimeout.
	StallTimeout time.Duration
}

// Image is one resolved image: a manifest, its config and layers.
type Image struct {
	Ref            string
	ManifestDigest digest.Digest
	ConfigDigest   digest.Digest
	Platform       ocispec.Platform
	// Platforms are all an OCI index (or a registry's) offers; empty for
	// a docker-archive, whose one platform is Platform.
	Platforms []ocispec.Platform
	Config    ocispec.Image
	Layers    []Layer
	store     store
	// attestation is BuildKit's attestation manifest for this image
	// (Attestations reads it).
	attestation *ocispec.Descriptor
}

// Close releases the archive or directory the image is read from.
func (img *Image) Close() error { return img.store.Close() }

// Transport names how a reference is read.
type Transport string

// Transports, as skopeo spells them.
const (
	TransportOCI           Transport = "oci"
	TransportOCIArchive    Transport = "oci-archive"
	TransportDockerArchive Transport = "docker-archive"
)

// localTransports are the transports whose reference is a path.
var localTransports = []Transport{TransportOCIArchive, TransportDockerArchive, TransportOCI}

// ParseRef splits "transport:path[:ref]"; a plain path has no transport
// (its kind is detected from its content).
func ParseRef(ref string) (t Transport, p, name string) {
	for _, tr := range localTransports {
		if rest, ok := strings.CutPrefix(ref, string(tr)+":"); ok {
			p, name = splitPathRef(rest)
			return tr, p, name
		}
	}
	return "", ref, ""
}

// HasTransport reports whether ref names its transport (oci:,
// oci-archive:, docker-archive:, docker://, docker-daemon:) rather than
// being a plain path, and returns ref without it.
func HasTransport(ref string) (rest string, ok bool) {
	if r, ok := strings.CutPrefix(ref, string(TransportDocker)+"://"); ok {
		return r, true
	}
	for _, tr := range append([]Transport{TransportDaemon}, localTransports...) {
		if r, ok := strings.CutPrefix(ref, string(tr)+":"); ok {
			return r, true
		}
	}
	return ref, false
}

// splitPathRef splits "PATH:REF" at the last colon when the whole string is
// not itself an existing path (paths may contain colons).
func splitPathRef(s string) (string, string) {
	if _, err := os.Stat(s); err == nil {
		return s, ""
	}
	// The first prefix that exists is the path: "x.tar:app:1" → x.tar, app:1.
	for i := strings.IndexByte(s, ':'); i > 0; i = nextColon(s, i) {
		if _, err := os.Stat(s[:i]); err == nil {
			return s[:i], s[i+1:]
		}
	}
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// Open opens the image ref names and resolves it for opts.Platform.
func Open(ref string, opts Options) (*Image, error) {
	return OpenContext(context.Background(), ref, opts)
}

// OpenContext is Open whose layer streams stop (with ctx.Err()) once ctx
// is done, so a cancelled conversion stops mid-layer.
func OpenContext(ctx context.Context, ref string, opts Options) (*Image, error) {
	s, t, name, what, err := openStore(ctx, ref, opts)
	if err != nil {
		return nil, err
	}
	img, err := resolve(s, t, name, opts)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("image %s: %w", what, err)
	}
	img.Ref = ref
	img.store = s
	img.setContext(ctx)
	return img, nil
}

// openStore opens the files of the image ref names: a registry, a layout
// directory or an archive. It returns the transport and the name within
// the store, and what to call the image in an error.
func openStore(ctx context.Context, ref string, opts Options) (s store, t Transport, name, what string, err error) {
	if r, ok := strings.CutPrefix(ref, string(TransportDocker)+"://"); ok {
		what = ref
		if s, err = newRemoteStore(ctx, r, opts); err != nil {
			return nil, "", "", "", fmt.Errorf("image %s: %w", what, err)
		}
		return s, TransportOCI, "", what, nil
	}
	if r, ok := strings.CutPrefix(ref, string(TransportDaemon)+":"); ok {
		what = ref
		if s, err = openDaemonStore(ctx, r, opts.SpoolDir, opts.Meter); err != nil {
			return nil, "", "", "", fmt.Errorf("image %s: %w", what, err)
		}
		// The stream holds the one image asked for.
		return s, TransportDockerArchive, "", what, nil
	}
	t, p, name := ParseRef(ref)
	fi, err := os.Stat(p)
	if err != nil {
		return nil, "", "", "", fmt.Errorf("image %s: %w", p, err)
	}
	switch {
	case fi.IsDir():
		if t != "" && t != TransportOCI {
			return nil, "", "", "", fmt.Errorf("image %s: a directory, not a %s: %w", p, t, ErrNotImage)
		}
		s, err = openDirStore(p)
	case t == TransportOCI:
		return nil, "", "", "", fmt.Errorf("image %s: oci: wants a layout directory; use oci-archive: for a tar: %w", p, ErrNotImage)
	case !fi.Mode().IsRegular():
		return nil, "", "", "", fmt.Errorf("image %s: a %s, not an image directory or archive: %w", p, fileKind(fi.Mode()), ErrNotRegular)
	default:
		s, err = openTarStore(p)
	}
	if err != nil {
		return nil, "", "", "", fmt.Errorf("image %s: %w", p, err)
	}
	return s, t, name, p, nil
}

// setContext makes the layers' streams stop once ctx is done.
func (img *Image) setContext(ctx context.Context) {
	for i := range img.Layers {
		img.Layers[i].ctx = ctx
	}
}

// resolve picks the layout kind from the content: an OCI layout
// (oci-layout + index.json, also inside Docker 25+ tarballs) is preferred;
// else a legacy `docker save` manifest.json.
func resolve(s store, t Transport, name string, opts Options) (*Image, error) {
	docker, err := isDockerLayout(s, t, name)
	if err != nil {
		return nil, err
	}
	if docker {
		return resolveDocker(s, name, opts)
	}
	return resolveOCI(s, name, opts)
}

// isDockerLayout reports whether the store is read as a legacy `docker
// save` archive (else as an OCI layout).
func isDockerLayout(s store, t Transport, name string) (bool, error) {
	hasOCI := s.exists("oci-layout") && s.exists("index.json")
	hasDocker := s.exists("manifest.json")
	switch {
	case t == TransportDockerArchive && hasDocker && !hasOCI, t == "" && hasDocker && !hasOCI:
		return true, nil
	case t == TransportDockerArchive && hasDocker && hasOCI && name != "" && !strings.HasPrefix(name, "@"):
		// Docker 25+ archive: the OCI index names images by ref too, but
		// RepoTags are what users pass; use them when given.
		return true, nil
	case hasOCI:
		return false, nil
	case hasDocker:
		return true, nil
	}
	return false, fmt.Errorf("%w: no oci-layout + index.json, nor a docker manifest.json", ErrNotImage)
}

func nextColon(s string, i int) int {
	j := strings.IndexByte(s[i+1:], ':')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}
