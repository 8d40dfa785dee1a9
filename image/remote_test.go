package image

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrlayout "github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// basicAuth wraps go-containerregistry's in-process registry with the
// htpasswd-style Basic auth a real distribution registry asks for.
func basicAuth(h http.Handler, user, pass string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// testRegistry serves the multi-platform fixture as HOST/c2vm/busybox:latest
// behind Basic auth (user "u", password "p"); it returns HOST and the
// index's digest.
func testRegistry(t *testing.T, tlsServer bool) (string, string) {
	t.Helper()
	h := basicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))), "u", "p")
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the TLS tests' handshake failures
	if tlsServer {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(strings.TrimPrefix(srv.URL, "http://"), "https://")
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: "u", Password: "p"})}
	if tlsServer {
		opts = append(opts, remote.WithTransport(srv.Client().Transport))
	}
	return host, push(t, filepath.Join(fixtures.Dir(t), "busybox-multi"), host+"/c2vm/busybox:latest", opts...)
}

// pushLayout serves an OCI layout's image from an in-process registry
// without auth and returns HOST and the pushed digest.
func pushLayout(t testing.TB, dir, repo string) (string, string) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	return host, push(t, dir, host+"/"+repo)
}

// push writes the layout's one top entry (an index or an image) to ref.
func push(t testing.TB, dir, ref string, opts ...remote.Option) string {
	t.Helper()
	p, err := ggcrlayout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	top := im.Manifests[0]
	if top.MediaType.IsIndex() {
		ii, err := idx.ImageIndex(top.Digest)
		if err == nil {
			err = remote.WriteIndex(r, ii, opts...)
		}
		if err != nil {
			t.Fatalf("pushing %s: %v", dir, err)
		}
	} else {
		img, err := idx.Image(top.Digest)
		if err == nil {
			err = remote.Write(r, img, opts...)
		}
		if err != nil {
			t.Fatalf("pushing %s: %v", dir, err)
		}
	}
	return top.Digest.String()
}

// TestRemoteFixture pulls the multi-platform fixture by tag and by digest
// (of the index and of one platform's manifest) and gets the layers of
// the local layout, every digest verified to EOF.
func TestRemoteFixture(t *testing.T) {
	host, idxDigest := testRegistry(t, false)
	isolateAuth(t)
	dir := fixtures.Dir(t)
	for _, arch := range []struct{ name, platform string }{{"amd64", "linux/amd64"}, {"arm64", "linux/arm64"}} {
		local, err := Open(filepath.Join(dir, "busybox-multi"), Options{Platform: arch.platform})
		if err != nil {
			t.Fatal(err)
		}
		local.Close()
		_, want := openFixture(t, "oci:"+filepath.Join(dir, "busybox-"+arch.name), Options{}, arch.name)
		for _, ref := range []string{
			"docker://" + host + "/c2vm/busybox:latest",
			"docker://" + host + "/c2vm/busybox@" + idxDigest,
			"docker://" + host + "/c2vm/busybox@" + local.ManifestDigest.String(),
		} {
			t.Run(arch.name+"/"+strings.TrimPrefix(ref, "docker://"+host+"/"), func(t *testing.T) {
				_, got := openFixture(t, ref, Options{Platform: arch.platform, Creds: "u:p"}, arch.name)
				if !slices.Equal(got, want) {
					t.Errorf("diff_ids %v, want %v", got, want)
				}
			})
		}
	}
}

// isolateAuth points every credential file at an empty temp dir (after
// the fixtures, which live under the real HOME, are found).
func isolateAuth(t *testing.T) string {
	fixtures.Dir(t)
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("DOCKER_CONFIG", filepath.Join(home, ".docker"))
	t.Setenv("XDG_RUNTIME_DIR", home)
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("REGISTRY_AUTH_FILE", "")
	return home
}

// TestRemoteCredentials: credentials found where skopeo and Docker keep
// them open the image; none, or wrong ones, fail in one line saying how
// to log in.
func TestRemoteCredentials(t *testing.T) {
	host, _ := testRegistry(t, false)
	ref := "docker://" + host + "/c2vm/busybox:latest"
	good := `{"auths":{"` + host + `":{"auth":"dTpw"}}}` // base64("u:p")
	for _, tc := range []struct {
		name  string
		files map[string]string // relative to the fake home
		env   string            // REGISTRY_AUTH_FILE, relative
		creds string
		ok    bool
	}{
		{name: "none"},
		{name: "--creds", creds: "u:p", ok: true},
		{name: "wrong --creds", creds: "u:x"},
		{name: "docker config", files: map[string]string{".docker/config.json": good}, ok: true},
		{name: "XDG_RUNTIME_DIR containers auth", files: map[string]string{"containers/auth.json": good}, ok: true},
		{name: "containers auth beside an unrelated docker config", files: map[string]string{
			"containers/auth.json": good, ".docker/config.json": `{"auths":{"other.example":{"auth":"eDp5"}}}`}, ok: true},
		{name: "REGISTRY_AUTH_FILE", files: map[string]string{"a.json": `{"auths":{"` + host + `/c2vm":{"auth":"dTpw"}}}`}, env: "a.json", ok: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := isolateAuth(t)
			for p, body := range tc.files {
				writeFile(t, filepath.Join(home, p), body)
			}
			if tc.env != "" {
				t.Setenv("REGISTRY_AUTH_FILE", filepath.Join(home, tc.env))
			}
			img, err := Open(ref, Options{Platform: "linux/amd64", Creds: tc.creds})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				img.Close()
				return
			}
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "skopeo login "+host) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v; want one line wrapping ErrUnauthorized saying how to log in", err)
			}
		})
	}
}

// TestRemoteFailures: each cause is named in one line.
func TestRemoteFailures(t *testing.T) {
	isolateAuth(t)
	host, _ := testRegistry(t, false)
	tlsHost, _ := testRegistry(t, true)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	for _, tc := range []struct {
		name string
		ref  string
		opts Options
		want error
		text string
	}{
		{"no such tag", host + "/c2vm/busybox:nope", Options{Creds: "u:p"}, ErrNoSuchImage, "no such"},
		{"no such repository", host + "/c2vm/other:latest", Options{Creds: "u:p"}, ErrNoSuchImage, "no such"},
		{"no such platform", host + "/c2vm/busybox:latest", Options{Creds: "u:p", Platform: "linux/s390x"}, ErrNoPlatform, "linux/amd64, linux/arm64"},
		{"refused connection", closed + "/c2vm/busybox:latest", Options{Creds: "u:p"}, ErrNetwork, closed},
		{"self-signed", tlsHost + "/c2vm/busybox:latest", Options{Creds: "u:p"}, ErrTLS, "--tls-verify=false"},
		{"self-signed, --tls-verify=false", tlsHost + "/c2vm/busybox:latest", Options{Creds: "u:p", InsecureTLS: true}, nil, ""},
		{"bad reference", "UPPER/case", Options{}, ErrNotImage, "docker://UPPER/case"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := OpenContext(context.Background(), "docker://"+tc.ref, tc.opts)
			if err == nil {
				img.Close()
			}
			if tc.want == nil {
				if err != nil {
					t.Errorf("got %v; want success", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v; want one line wrapping %v naming %q", err, tc.want, tc.text)
			}
		})
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// corruptBlobs flips one byte of every blob body over 4 KiB the registry
// serves (the layers, not the manifests or configs).
func corruptBlobs(h http.Handler) http.Handler {
	return serveBlobs(h, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if len(body) > 4<<10 {
			body[len(body)/2] ^= 0xff
		}
		w.Write(body)
	})
}

// serveBlobs has serve write the body of every blob the registry h
// answers a GET with, after h's status and headers.
func serveBlobs(h http.Handler, serve func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		serve(w, r, rec.Body.Bytes())
	})
}

// TestRemoteCorruptLayer: a layer whose bytes do not match its digest is
// refused as a digest mismatch before it is decoded, and no spooled copy
// outlives the image.
func TestRemoteCorruptLayer(t *testing.T) {
	isolateAuth(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	srv := httptest.NewServer(corruptBlobs(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, filepath.Join(fixtures.Dir(t), "busybox-amd64"), host+"/c2vm/busybox:latest")
	img, err := Open("docker://"+host+"/c2vm/busybox:latest", Options{})
	if err != nil {
		t.Fatal(err)
	}
	var failed int
	for _, l := range img.Layers {
		rc, err := l.Open()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if l.Size > 4<<10 {
			failed++
			if !errors.Is(err, ErrDigestMismatch) {
				t.Errorf("layer %s (%d bytes): %v; want a digest mismatch", l.Digest, l.Size, err)
			}
		} else if err != nil {
			t.Errorf("layer %s: %v", l.Digest, err)
		}
	}
	if failed == 0 {
		t.Fatal("no layer over 4 KiB to corrupt")
	}
	img.Close()
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("left in TMPDIR: %v", left)
	}
}

// TestRemoteFetchesOnePlatform: converting one platform of a multi-platform
// image fetches that platform's config and layers, each once (hashed as
// downloaded, decoded from the spool), and no other blob.
func TestRemoteFetchesOnePlatform(t *testing.T) {
	isolateAuth(t)
	host, gets := countedRegistry(t, registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	push(t, filepath.Join(fixtures.Dir(t), "busybox-multi"), host+"/c2vm/busybox:latest")
	for _, arch := range []string{"amd64", "arm64"} {
		t.Run(arch, func(t *testing.T) {
			gets.reset()
			img, err := Open("docker://"+host+"/c2vm/busybox:latest", Options{Platform: "linux/" + arch})
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			want := map[string]int{img.ConfigDigest.String(): 1}
			for _, l := range img.Layers {
				layerNames(t, l)
				want[l.Digest.String()] = 1
			}
			if fetched := gets.blobs(); !maps.Equal(fetched, want) {
				t.Errorf("GETs per blob %v; want the %s config and layers once each: %v", fetched, arch, want)
			}
		})
	}
}

// TestRemoteSpoolHashedOnce: a registry blob is hashed once, as it is
// downloaded (its reader is a checkedBlob); Layer.Open then decodes its
// spool without a second hash pass. Shown by changing a byte of the spool
// after the first read: Open no longer refuses it up front, and the
// diff_id check at the end of the stream still does. A local layout's
// blob is hashed at every Open.
func TestRemoteSpoolHashedOnce(t *testing.T) {
	isolateAuth(t)
	host, _ := pushLayout(t, filepath.Join(fixtures.Dir(t), "busybox-amd64"), "c2vm/busybox:latest")
	img, err := Open("docker://"+host+"/c2vm/busybox:latest", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	l := img.Layers[0]
	if c := checkedReader(t, l); c == nil || c.blobDigest() != l.Digest {
		t.Fatal("a registry layer's reader is not checked against its own digest")
	}
	layerNames(t, l)
	rs := l.s.(*remoteStore)
	rs.mu.Lock()
	f := rs.spooled[l.Digest].f
	rs.mu.Unlock()
	b := make([]byte, 1)
	f.ReadAt(b, l.Size/2)
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, l.Size/2); err != nil {
		t.Fatal(err)
	}
	rc, err := l.Open()
	if err != nil {
		t.Fatalf("Open hashed the spool again: %v", err)
	}
	_, err = io.Copy(io.Discard, rc)
	rc.Close()
	if !errors.Is(err, ErrDigestMismatch) && !errors.Is(err, ErrCorrupt) {
		t.Errorf("a changed spool read through: %v", err)
	}

	local, err := Open(filepath.Join(fixtures.Dir(t), "busybox-amd64"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if checkedReader(t, local.Layers[0]) != nil {
		t.Error("a local layout's blob counts as checked")
	}
}

// checkedReader is the store's reader of l's blob as a checkedBlob, or nil.
func checkedReader(t *testing.T, l Layer) checkedBlob {
	t.Helper()
	raw, _, err := l.s.open(l.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c, _ := raw.(checkedBlob)
	return c
}

// holdBlobs serves every blob body over 64 KiB in two halves: the first
// at once, the second only once release is closed; spoil, when set, is
// done to the body first.
func holdBlobs(h http.Handler, release <-chan struct{}, spoil func([]byte)) http.Handler {
	return serveBlobs(h, func(w http.ResponseWriter, r *http.Request, body []byte) {
		if len(body) <= 64<<10 {
			w.Write(body)
			return
		}
		if spoil != nil {
			spoil(body)
		}
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Write(body[len(body)/2:])
	})
}

// TestRemoteDecodesWhileDownloading: a registry layer is decoded as it
// downloads: its first tar entry comes out while the registry still holds
// the second half of its bytes; the rest then reads to the end clean.
func TestRemoteDecodesWhileDownloading(t *testing.T) {
	img, l, free := heldLayer(t, nil)
	defer img.Close()
	first, end := make(chan error, 1), make(chan error, 1)
	go func() {
		rc, err := l.Open()
		if err == nil {
			defer rc.Close()
			_, err = tar.NewReader(rc).Next()
		}
		first <- err
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
		}
		end <- err
	}()
	select {
	case err := <-first:
		if err != nil {
			t.Fatalf("first tar entry: %v", err)
		}
	case <-time.After(30 * time.Second):
		free()
		t.Fatal("no tar entry while the registry held the second half of the layer")
	}
	free()
	if err := <-end; err != nil {
		t.Fatalf("reading the rest: %v", err)
	}
}

// heldLayer serves busybox through holdBlobs and returns the image, its
// largest layer, and the func that releases the held halves.
func heldLayer(t *testing.T, spoil func([]byte)) (*Image, Layer, func()) {
	t.Helper()
	isolateAuth(t)
	release := make(chan struct{})
	srv := httptest.NewServer(holdBlobs(registry.New(registry.Logger(log.New(io.Discard, "", 0))), release, spoil))
	t.Cleanup(srv.Close)
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free) // before srv.Close, which waits for the held handlers
	host := strings.TrimPrefix(srv.URL, "http://")
	push(t, filepath.Join(fixtures.Dir(t), "busybox-amd64"), host+"/c2vm/busybox:latest")
	img, err := Open("docker://"+host+"/c2vm/busybox:latest", Options{})
	if err != nil {
		t.Fatal(err)
	}
	l := slices.MaxFunc(img.Layers, func(a, b Layer) int { return int(a.Size - b.Size) })
	if l.Size <= 64<<10 {
		t.Fatalf("largest layer %d bytes: too small to hold half of", l.Size)
	}
	return img, l, free
}

// TestRemoteCorruptWhileDownloading: a layer whose first half is corrupt
// (its gzip header, or bytes its decoder takes) fails as a digest
// mismatch naming it, as a spooled one did, not with the decoding error
// its garbage may give first: its reader waits for the digest check,
// which the registry holding the second half puts off.
func TestRemoteCorruptWhileDownloading(t *testing.T) {
	for what, spoil := range map[string]func([]byte){
		"header": func(b []byte) { b[3] |= 0xe0 }, // gzip's reserved flags
		"body": func(b []byte) {
			for i := range 64 {
				b[len(b)/4+i] ^= 0xff
			}
		},
	} {
		t.Run(what, func(t *testing.T) {
			img, l, free := heldLayer(t, spoil)
			defer img.Close()
			end := make(chan error, 1)
			go func() {
				rc, err := l.Open()
				if err == nil {
					defer rc.Close()
					_, err = io.Copy(io.Discard, rc)
				}
				end <- err
			}()
			select {
			case err := <-end:
				t.Fatalf("the layer ended before its digest check: %v", err)
			case <-time.After(time.Second): // time to decode the first half
			}
			free()
			err := <-end
			want := "layer " + l.Digest.String() + ": digest mismatch: "
			if !errors.Is(err, ErrDigestMismatch) || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("got %v; want one line starting %q", err, want)
			}
		})
	}
}
