package image

import (
	"github.com/c2vm/c2vm/internal/safeio"

	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TransportDocker is a registry reference, as skopeo spells it:
// docker://[REGISTRY/]REPO[:TAG|@DIGEST].
const TransportDocker Transport = "docker"

// Errors naming why a registry refused or could not be reached.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrTLS          = errors.New("TLS failure")
	ErrNetwork      = errors.New("network failure")
)

// A registry reference is read through go-containerregistry's remote
// package. The registry is made to look like an OCI layout (a one-entry
// index.json over the reference's manifest), so platform choice, bounds
// and digest checks are the local layout's, and only the blobs of the
// chosen platforms are ever fetched.

// remoteStore serves a registry repository as the files of an OCI layout:
// index.json is made up, blobs/ALG/HEX is a manifest (fetched from the
// manifests endpoint, which a registry alone serves them from) or a blob
// (spooled once to a temp file, read as it downloads: spool.go).
type remoteStore struct {
	ctx       context.Context
	cancel    context.CancelFunc // stops the downloads still running at Close
	downloads sync.WaitGroup
	repo      name.Repository
	registry  string
	index     []byte
	opts      []remote.Option
	mu        sync.Mutex
	manifests map[digest.Digest]bool  // digests to fetch as manifests
	top       *remote.Descriptor      // the reference's own manifest, fetched first
	sizes     map[digest.Digest]int64 // layer sizes the manifests give, for the meter
	bounds    map[digest.Digest]int64 // every blob's size the manifests give
	meter     func(string, int64) io.WriteCloser
	spooled   map[digest.Digest]*spool
	failed    []*spool // forgotten after their download failed; their files closed at Close
}

var _ store = (*remoteStore)(nil)

func newRemoteStore(ctx context.Context, ref string, opts Options) (*remoteStore, error) {
	var nameOpts []name.Option
	if opts.InsecureTLS {
		nameOpts = append(nameOpts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nameOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotImage, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &remoteStore{ctx: ctx, cancel: cancel, repo: r.Context(), registry: r.Context().RegistryStr(), manifests: map[digest.Digest]bool{}, sizes: map[digest.Digest]int64{}, bounds: map[digest.Digest]int64{}, meter: opts.Meter, spooled: map[digest.Digest]*spool{}}
	if err := s.connect(r, opts); err != nil {
		cancel()
		return nil, err
	}
	return s, nil
}

// connect makes the registry client and fetches the reference's manifest.
func (s *remoteStore) connect(r name.Reference, opts Options) error {
	var err error
	s.opts, err = RemoteOptions(s.ctx, opts)
	if err != nil {
		return err
	}
	// One puller for every request of this store: the registry is pinged
	// and its token fetched once, however many manifests and blobs (of
	// however many platforms) are read (remote.Reuse).
	p, err := remote.NewPuller(s.opts...)
	if err != nil {
		return err
	}
	s.opts = append(s.opts, remote.Reuse(p))
	top, err := remote.Get(r, s.opts...)
	if err != nil {
		return s.explain(err)
	}
	d := digest.Digest(top.Digest.String())
	s.manifests[d] = true
	s.top = top
	mt := string(top.MediaType)
	if !isIndex(mt) && !isManifest(mt) {
		mt = "" // the walk sniffs the body
	}
	s.index, err = json.Marshal(ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, Manifests: []ocispec.Descriptor{{MediaType: mt, Digest: d, Size: top.Size}}})
	return err
}

// RemoteOptions are the registry client's options, for pulls and pushes
// alike: credentials as Docker and skopeo find them (or --creds), TLS as
// --tls-verify says, and the guards of guard.go (manifest bound, redirect
// chain, stall timeout).
func RemoteOptions(ctx context.Context, opts Options) ([]remote.Option, error) {
	o := []remote.Option{remote.WithContext(ctx), remote.WithUserAgent("c2vm")}
	if opts.Creds != "" {
		user, pass, ok := strings.Cut(opts.Creds, ":")
		if !ok || user == "" {
			return nil, fmt.Errorf("--creds: want USER:PASSWORD: %w", ErrUnauthorized)
		}
		o = append(o, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	} else {
		o = append(o, remote.WithAuthFromKeychain(Keychain))
	}
	t := remote.DefaultTransport.(*http.Transport).Clone()
	if opts.InsecureTLS {
		t.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // --tls-verify=false asked for it
	}
	stall := opts.StallTimeout
	if stall <= 0 {
		stall = DefaultStallTimeout
	}
	return append(o, remote.WithTransport(guard{inner: t, stall: stall})), nil
}

// open serves index.json, oci-layout, and blobs by digest.
func (s *remoteStore) open(p string) (io.ReadCloser, int64, error) {
	switch p {
	case "index.json":
		return io.NopCloser(bytes.NewReader(s.index)), int64(len(s.index)), nil
	case "oci-layout":
		return io.NopCloser(strings.NewReader(`{"imageLayoutVersion":"1.0.0"}`)), 30, nil
	}
	d, err := blobDigest(p)
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	isManifest := s.manifests[d]
	s.mu.Unlock()
	if isManifest {
		return s.openManifest(d)
	}
	return s.openBlob(d)
}

func blobDigest(p string) (digest.Digest, error) {
	dir, hex := path.Split(p)
	alg, ok := strings.CutPrefix(strings.TrimSuffix(dir, "/"), "blobs/")
	if !ok {
		return "", fmt.Errorf("%s: %w", p, ErrMissingBlob)
	}
	d := digest.NewDigestFromEncoded(digest.Algorithm(alg), hex)
	return d, checkDigest(d)
}

// openManifest fetches a manifest by digest (go-containerregistry checks
// the body against it) and notes the children of an index as manifests.
func (s *remoteStore) openManifest(d digest.Digest) (io.ReadCloser, int64, error) {
	desc := s.top
	if d.String() != desc.Digest.String() {
		var err error
		if desc, err = remote.Get(s.repo.Digest(d.String()), s.opts...); err != nil {
			return nil, 0, s.explain(err)
		}
	}
	type ref struct {
		Digest digest.Digest `json:"digest"`
		Size   int64         `json:"size"`
	}
	var m struct {
		Manifests []ref `json:"manifests"`
		Config    ref   `json:"config"`
		Layers    []ref `json:"layers"`
	}
	if json.Unmarshal(desc.Manifest, &m) == nil {
		s.mu.Lock()
		for _, c := range m.Manifests {
			s.manifests[c.Digest] = true
		}
		for _, l := range m.Layers {
			s.sizes[l.Digest] = l.Size
			s.bounds[l.Digest] = l.Size
		}
		s.bounds[m.Config.Digest] = m.Config.Size
		s.mu.Unlock()
	}
	return io.NopCloser(bytes.NewReader(desc.Manifest)), int64(len(desc.Manifest)), nil
}

// openBlob downloads a blob once into an unnamed temp file (removed as
// soon as made, so gone however c2vm ends, SIGKILL included) and serves
// it from there. go-containerregistry hashes the body as it streams and
// fails the read at EOF on a mismatch; a layer's reader follows the
// download (a follower: decoded as it arrives) and ends with that
// verdict, so Layer.Open need not hash it again. Any other blob (a
// config, read whole) is served once its download is verified.
func (s *remoteStore) openBlob(d digest.Digest) (io.ReadCloser, int64, error) {
	sp, err := s.spoolOnce(d)
	if err != nil {
		return nil, 0, err
	}
	s.mu.Lock()
	size, layer := s.sizes[d]
	s.mu.Unlock()
	if !layer {
		if err := sp.verdict(); err != nil {
			return nil, 0, err
		}
		size = sp.high
	}
	return &follower{sp: sp}, size, nil
}

// spoolOnce is blob d's spool: the first open of d starts its download,
// an open of d meanwhile follows that download, and opens of other blobs
// start theirs. A failed download is forgotten, so a later open tries
// again.
func (s *remoteStore) spoolOnce(d digest.Digest) (*spool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sp, ok := s.spooled[d]; ok {
		return sp, nil
	}
	f, err := os.CreateTemp("", ".c2vm-pull-")
	if err != nil {
		return nil, fmt.Errorf("spooling blob %s: %w", d, err)
	}
	os.Remove(f.Name())
	sp := newSpool(d, f)
	s.spooled[d] = sp
	s.downloads.Add(1)
	go s.fetch(sp)
	return sp, nil
}

// fetch downloads sp's blob into it, in the background.
func (s *remoteStore) fetch(sp *spool) {
	defer s.downloads.Done()
	n, err := s.download(sp)
	if err != nil {
		s.mu.Lock()
		if s.spooled[sp.d] == sp {
			delete(s.spooled, sp.d)
		}
		s.failed = append(s.failed, sp)
		s.mu.Unlock()
	}
	sp.finish(n, err)
}

// blobTries bounds the downloads of one blob whose body broke off (a
// connection reset, a short body): go-containerregistry retries a request
// that fails, not a body that breaks after its headers.
const blobTries = 3

// download fetches sp's blob into it, again (after 1 s, then 3 s, as the
// request retries wait) when its body breaks off, and returns its length.
func (s *remoteStore) download(sp *spool) (int64, error) {
	wait := time.Second
	for try := 1; ; try++ {
		w := &spoolWriter{sp: sp}
		err := s.downloadOnce(sp.d, w)
		switch {
		case err == nil:
			return w.off, nil
		case !brokenOff(err):
			return 0, s.explain(err)
		case try == blobTries:
			return 0, fmt.Errorf("%d tries: %w", blobTries, s.explain(err))
		}
		select {
		case <-s.ctx.Done():
			return 0, s.ctx.Err()
		case <-time.After(wait):
		}
		wait *= 3
	}
}

// brokenOff is a body cut short by the network: worth fetching again.
func brokenOff(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)
}

// downloadOnce fetches blob d into w, from its start; its errors are the client's own,
// for download to judge and explain.
func (s *remoteStore) downloadOnce(d digest.Digest, w io.Writer) error {
	l, err := remote.Layer(s.repo.Digest(d.String()), s.opts...)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	s.mu.Lock()
	size, layer := s.sizes[d]
	bound, bounded := s.bounds[d]
	s.mu.Unlock()
	var src io.Reader = safeio.Reader(s.ctx, rc)
	if layer && s.meter != nil { // a layer: show it
		m := s.meter("pull "+d.Encoded()[:12], size)
		defer m.Close()
		src = io.TeeReader(src, m)
	}
	if bounded { // a registry that sends more than the manifest says is cut off there
		src = io.LimitReader(src, bound+1)
	}
	n, err := io.CopyBuffer(w, src, make([]byte, 256<<10))
	if err == nil && bounded && n > bound {
		return fmt.Errorf("more than the %d bytes its manifest gives: %w", bound, ErrCorrupt)
	}
	if err != nil {
		if strings.Contains(err.Error(), "error verifying") {
			return fmt.Errorf("%w: %w", ErrDigestMismatch, err) // the caller names the blob
		}
		return fmt.Errorf("downloading: %w", err)
	}
	return nil
}

// exists: every blob a manifest names is taken to be there; fetching it
// says otherwise (a HEAD per layer would cost a round trip each).
func (s *remoteStore) exists(string) bool { return true }

// Close stops the downloads still running, waits for them, and closes
// every spool.
func (s *remoteStore) Close() error {
	s.cancel()
	s.downloads.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sp := range s.spooled {
		sp.f.Close()
	}
	for _, sp := range s.failed {
		sp.f.Close()
	}
	return nil
}

func (s *remoteStore) explain(err error) error { return ExplainRegistry(s.repo, err) }

// ExplainRegistry turns a registry client's error about repo into one
// line naming its cause: unauthorized (and how to log in), not found, TLS,
// or network.
func ExplainRegistry(repo name.Repository, err error) error {
	registry := repo.RegistryStr()
	var te *transport.Error
	var ue x509.UnknownAuthorityError
	var he x509.HostnameError
	var ce x509.CertificateInvalidError
	var re tls.RecordHeaderError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, ErrStalled), errors.Is(err, ErrTooLarge), errors.Is(err, ErrRedirects): // guard.go's
		return fmt.Errorf("registry %s: %w", registry, err)
	case errors.As(err, &ue), errors.As(err, &he), errors.As(err, &ce), errors.As(err, &re),
		strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"), strings.Contains(err.Error(), "tls: "),
		strings.Contains(err.Error(), "HTTP request to an HTTPS server"): // a TLS-only registry's answer to the plain-HTTP try (loopback)
		return fmt.Errorf("registry %s: %w: %s (for a plain-HTTP or self-signed registry give --tls-verify=false)", registry, ErrTLS, oneLineErr(err))
	case errors.As(err, &te):
		switch {
		case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden || hasCode(te, transport.UnauthorizedErrorCode, transport.DeniedErrorCode):
			return fmt.Errorf("%s: %w (%s): give --creds USER:PASSWORD or log in with `skopeo login %s` or `docker login %s`",
				repo, ErrUnauthorized, http.StatusText(te.StatusCode), registry, registry)
		case te.StatusCode == http.StatusNotFound || hasCode(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode):
			return fmt.Errorf("%s: %w: the registry has no such repository, tag or digest (%s)", repo, ErrNoSuchImage, oneLineErr(te))
		}
		return fmt.Errorf("registry %s: %s", registry, oneLineErr(te))
	case errors.As(err, &ne):
		return fmt.Errorf("registry %s: %w: %s", registry, ErrNetwork, oneLineErr(err))
	}
	return err
}

func hasCode(te *transport.Error, codes ...transport.ErrorCode) bool {
	for _, d := range te.Errors {
		for _, c := range codes {
			if d.Code == c {
				return true
			}
		}
	}
	return false
}

func oneLineErr(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }
