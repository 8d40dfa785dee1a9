package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// A misbehaving registry: go-containerregistry's in-process registry holds
// a one-layer image, served to c2vm through a fault (a middleware that
// answers some requests itself). Each test below is one behaviour.

// fault answers r itself and returns true, or returns false to let the
// registry answer.
type fault func(h *hostile, w http.ResponseWriter, r *http.Request) bool

// hostile is a registry serving one image through a fault.
type hostile struct {
	host  string // HOST:PORT the fault is in front of
	reg   http.Handler
	layer v1.Hash
	size  int64
	blob  []byte       // the layer's bytes
	hits  atomic.Int32 // requests the fault answered
}

func (h *hostile) ref() string { return "docker://" + h.host + "/c2vm/img:latest" }

// newHostile pushes img (a random one-layer image when nil) and serves it
// through f.
func newHostile(t *testing.T, img v1.Image, f fault) *hostile {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	clean := httptest.NewServer(reg)
	t.Cleanup(clean.Close)
	if img == nil {
		img = randomImage(t)
	}
	ref := strings.TrimPrefix(clean.URL, "http://") + "/c2vm/img:latest"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	h := &hostile{reg: reg}
	ls, _ := img.Layers()
	h.layer, _ = ls[0].Digest()
	h.size, _ = ls[0].Size()
	rc, err := ls[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if h.blob, err = io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f(h, w, r) {
			h.hits.Add(1)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	h.host = strings.TrimPrefix(srv.URL, "http://")
	return h
}

func randomImage(t *testing.T) v1.Image {
	t.Helper()
	img, err := random.Image(256<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// pull opens the image and reads its layer to the end, as convert does.
func (h *hostile) pull(opts Options) error {
	img, err := OpenContext(context.Background(), h.ref(), opts)
	if err != nil {
		return err
	}
	defer img.Close()
	rc, err := img.Layers[0].Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// isLayer: r fetches the image's layer.
func (h *hostile) isLayer(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+h.layer.String())
}

// pullFails pulls and wants an error matching want and naming the layer,
// within limit; it returns the error and logs the time and peak heap.
func (h *hostile) pullFails(t *testing.T, opts Options, want error, limit time.Duration) error {
	t.Helper()
	start := time.Now()
	peak := heapPeak()
	err := h.pull(opts)
	took := time.Since(start)
	t.Logf("failed in %v (peak heap %d MiB): %v", took.Round(time.Millisecond), peak()>>20, err)
	if err == nil {
		t.Fatal("pull succeeded; want it to fail")
	}
	if want != nil && !errors.Is(err, want) {
		t.Errorf("got %v, want %v", err, want)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error of more than one line: %q", err)
	}
	if took > limit {
		t.Errorf("took %v, want under %v", took, limit)
	}
	return err
}

// heapPeak samples the heap in use until the returned func is called.
func heapPeak() func() uint64 {
	var peak atomic.Uint64
	done := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return func() uint64 { close(done); return peak.Load() }
}

func namesLayer(t *testing.T, err error, h *hostile) {
	t.Helper()
	if !strings.Contains(err.Error(), h.layer.Hex[:12]) {
		t.Errorf("error does not name the blob %s: %v", h.layer, err)
	}
}

// TestRegistryRetries: 5xx and 429 answers to a blob are retried, three
// times at most (go-containerregistry's transport: 1 s, then 3 s apart),
// then the error names the blob and the status.
func TestRegistryRetries(t *testing.T) {
	for _, code := range []int{500, 503, 429} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			var fails atomic.Int32
			fails.Store(2)
			h := newHostile(t, nil, func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
				if h.isLayer(r) && fails.Add(-1) >= 0 {
					http.Error(w, "busy", code)
					return true
				}
				return false
			})
			if err := h.pull(Options{}); err != nil {
				t.Fatalf("two %d answers, then the blob: %v", code, err)
			}
			fails.Store(1 << 20)
			h.hits.Store(0)
			err := h.pullFails(t, Options{}, nil, 20*time.Second)
			namesLayer(t, err, h)
			if !strings.Contains(err.Error(), fmt.Sprint(code)) {
				t.Errorf("error does not give the status %d: %v", code, err)
			}
			if n := h.hits.Load(); n != 3 {
				t.Errorf("%d requests for the blob, want 3", n)
			}
		})
	}
}

// cutOff answers with the blob's headers and its first KiB, then resets
// the connection (SO_LINGER 0: an RST, not a FIN).
func (h *hostile) cutOff(w http.ResponseWriter) { h.cutOffWith(w, h.blob[:1024]) }

// cutOffWith answers with the blob's headers and head, then resets the
// connection.
func (h *hostile) cutOffWith(w http.ResponseWriter, head []byte) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/octet-stream\r\n\r\n", h.size)
	buf.Write(head)
	buf.Flush()
	conn.(*net.TCPConn).SetLinger(0)
	conn.Close()
}

// TestRegistryConnectionReset: a blob whose connection is reset mid-body
// is fetched again, three times at most, then the error names the blob.
func TestRegistryConnectionReset(t *testing.T) {
	var fails atomic.Int32
	fails.Store(2)
	h := newHostile(t, nil, func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
		if h.isLayer(r) && fails.Add(-1) >= 0 {
			h.cutOff(w)
			return true
		}
		return false
	})
	if err := h.pull(Options{}); err != nil {
		t.Fatalf("two resets, then the blob: %v", err)
	}
	fails.Store(1 << 20)
	h.hits.Store(0)
	err := h.pullFails(t, Options{}, nil, 20*time.Second)
	namesLayer(t, err, h)
	if !strings.Contains(err.Error(), "3 tries") {
		t.Errorf("error does not say how often it tried: %v", err)
	}
	if n := h.hits.Load(); n < 3 || n > 9 {
		t.Errorf("%d requests for the blob, want 3 to 9", n)
	}
}

// TestRegistryRefetchDiffers: a blob whose re-fetch, after its connection
// was reset, does not repeat the bytes already spooled (and maybe already
// decoded) fails as a digest mismatch naming the blob, though the
// re-fetch alone matches its digest.
func TestRegistryRefetchDiffers(t *testing.T) {
	var fails atomic.Int32
	fails.Store(1)
	h := newHostile(t, nil, func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
		if h.isLayer(r) && fails.Add(-1) >= 0 {
			h.cutOffWith(w, make([]byte, 1024))
			return true
		}
		return false
	})
	err := h.pullFails(t, Options{}, ErrDigestMismatch, 20*time.Second)
	namesLayer(t, err, h)
}

// hang holds a request until the client gives up on it.
func hang(r *http.Request) { <-r.Context().Done() }

// TestRegistryStall: a blob that stops flowing, and a manifest whose
// headers never come, fail after the stall timeout naming what stalled.
func TestRegistryStall(t *testing.T) {
	for what, f := range map[string]fault{
		"blob": func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
			if !h.isLayer(r) {
				return false
			}
			w.Header().Set("Content-Length", fmt.Sprint(h.size))
			w.Write(make([]byte, 1024))
			w.(http.Flusher).Flush()
			hang(r)
			return true
		},
		"manifest": func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") {
				return false
			}
			hang(r)
			return true
		},
	} {
		t.Run(what, func(t *testing.T) {
			h := newHostile(t, nil, f)
			err := h.pullFails(t, Options{StallTimeout: time.Second}, ErrStalled, 10*time.Second)
			if what == "blob" {
				namesLayer(t, err, h)
			} else if !strings.Contains(err.Error(), "/manifests/latest") {
				t.Errorf("error does not name the manifest: %v", err)
			}
		})
	}
}

// TestRegistryRedirects: a redirect loop ends after a few hops; a redirect
// to another scheme is refused; both name the blob.
func TestRegistryRedirects(t *testing.T) {
	for what, to := range map[string]func(r *http.Request) string{
		"loop": func(r *http.Request) string { return r.URL.Path + "?" + r.URL.RawQuery + "x" },
		"ftp":  func(r *http.Request) string { return "ftp://" + r.Host + r.URL.Path },
		"file": func(r *http.Request) string { return "file:///etc/passwd" },
	} {
		t.Run(what, func(t *testing.T) {
			h := newHostile(t, nil, func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
				if !h.isLayer(r) {
					return false
				}
				http.Redirect(w, r, to(r), http.StatusTemporaryRedirect)
				return true
			})
			err := h.pullFails(t, Options{}, ErrRedirects, 10*time.Second)
			namesLayer(t, err, h)
			if n := h.hits.Load(); n > maxRedirects+1 {
				t.Errorf("%d redirects followed, want at most %d", n-1, maxRedirects)
			}
		})
	}
}

// TestRegistryRedirectDropsCredentials: a registry that wants Basic
// credentials sends its blob to storage on another host; the storage
// never sees them, and the pull succeeds.
func TestRegistryRedirectDropsCredentials(t *testing.T) {
	var leaked atomic.Value
	leaked.Store("")
	var storage *httptest.Server
	h := newHostile(t, nil, func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		if h.isLayer(r) {
			http.Redirect(w, r, storage.URL+r.URL.Path, http.StatusTemporaryRedirect)
			return true
		}
		return false
	})
	storage = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked.Store(leaked.Load().(string) + r.Header.Get("Authorization"))
		h.reg.ServeHTTP(w, r)
	}))
	t.Cleanup(storage.Close)
	isolateAuth(t)
	if err := h.pull(Options{Creds: "u:p"}); err != nil {
		t.Fatal(err)
	}
	if h.hits.Load() == 0 {
		t.Fatal("the blob was not redirected")
	}
	if l := leaked.Load().(string); l != "" {
		t.Errorf("the storage host got the registry's credentials: %q", l)
	}
}

// TestRegistryManifestBound: a manifest over 4 MiB is refused from its
// Content-Length before its body is read, and one without a length is
// cut off at 4 MiB, in bounded memory.
func TestRegistryManifestBound(t *testing.T) {
	for what, f := range map[string]fault{
		"content-length": func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") || r.Method != http.MethodGet {
				return false
			}
			w.Header().Set("Content-Length", fmt.Sprint(64<<20))
			w.Write([]byte(`{"schemaVersion": 2,`))
			w.(http.Flusher).Flush()
			hang(r) // a client that reads on waits here for the stall timeout
			return true
		},
		"chunked": func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
			if !strings.Contains(r.URL.Path, "/manifests/") || r.Method != http.MethodGet {
				return false
			}
			w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
			w.Write([]byte(`{"schemaVersion": 2, "x": "`))
			chunk := []byte(strings.Repeat("a", 64<<10))
			for i := 0; i < 1024 && r.Context().Err() == nil; i++ { // 64 MiB
				w.Write(chunk)
			}
			return true
		},
	} {
		t.Run(what, func(t *testing.T) {
			h := newHostile(t, nil, f)
			peak := heapPeak()
			err := h.pullFails(t, Options{}, ErrTooLarge, 10*time.Second)
			if p := peak(); p > 64<<20 {
				t.Errorf("peak heap %d MiB, want under 64", p>>20)
			}
			if !strings.Contains(err.Error(), "manifests/latest") {
				t.Errorf("error does not name the manifest: %v", err)
			}
		})
	}
}

// TestRegistryArtifacts: an OCI artifact that is not a container image is
// named as what it is, before its config or layers are fetched.
func TestRegistryArtifacts(t *testing.T) {
	for mt, want := range map[types.MediaType]string{
		"application/vnd.cncf.helm.config.v1+json":   "a Helm chart",
		"application/vnd.wasm.config.v0+json":        "a WASM module",
		"application/vnd.module.wasm.config.v1+json": "a WASM module",
		"application/x-something-else":               "config of media type application/x-something-else",
	} {
		t.Run(want, func(t *testing.T) {
			var blobs atomic.Int32
			img := mutate.ConfigMediaType(randomImage(t), mt)
			h := newHostile(t, img, func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
				if strings.Contains(r.URL.Path, "/blobs/") {
					blobs.Add(1)
				}
				return false
			})
			err := h.pullFails(t, Options{}, ErrNotImage, 10*time.Second)
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want it to say %q", err, want)
			}
			if n := blobs.Load(); n != 0 {
				t.Errorf("%d blobs fetched before the media type was checked", n)
			}
		})
	}
}

// TestRegistryEndlessBlob: a blob that streams on past the size its
// manifest gives (no Content-Length) is cut off there, naming the blob,
// rather than spooled until the disk is full.
func TestRegistryEndlessBlob(t *testing.T) {
	h := newHostile(t, nil, func(h *hostile, w http.ResponseWriter, r *http.Request) bool {
		if !h.isLayer(r) {
			return false
		}
		chunk := make([]byte, 64<<10)
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				break
			}
		}
		return true
	})
	err := h.pullFails(t, Options{}, ErrCorrupt, 10*time.Second)
	namesLayer(t, err, h)
	if !strings.Contains(err.Error(), fmt.Sprintf("more than the %d bytes", h.size)) {
		t.Errorf("error does not give the size: %v", err)
	}
}

// TestRegistryDeepIndex: an index nested deeper than maxIndexDepth in a
// registry is refused, naming the index, before its image is read.
func TestRegistryDeepIndex(t *testing.T) {
	var idx v1.ImageIndex = mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: randomImage(t)})
	for i := 0; i < maxIndexDepth+2; i++ {
		idx = mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: idx})
	}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/c2vm/deep:latest"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	_, err = OpenContext(context.Background(), "docker://"+ref, Options{})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), fmt.Sprintf("nested more than %d deep", maxIndexDepth)) {
		t.Fatalf("got %v, want the index refused as nested too deep", err)
	}
}

// TestGuardSlowUpload: an upload read slowly, for longer than the stall
// timeout in all, is progress, not a stall (the transport below stands in
// for a slow network: it reads the body 1 KiB per 100 ms); one that stops
// being read is a stall.
func TestGuardSlowUpload(t *testing.T) {
	c := &http.Client{Transport: guard{inner: slowNet{}, stall: time.Second}}
	body := func() io.Reader { return io.LimitReader(neverEnding{}, 24<<10) } // 2.4 s
	resp, err := c.Post("http://registry.invalid/slow", "application/octet-stream", body())
	if err != nil {
		t.Fatalf("a slow upload: %v", err)
	}
	resp.Body.Close()
	start := time.Now()
	_, err = c.Post("http://registry.invalid/stop", "application/octet-stream", body())
	if !errors.Is(err, ErrStalled) {
		t.Fatalf("an upload no longer read: %v, want %v", err, ErrStalled)
	}
	t.Logf("stalled upload failed in %v: %v", time.Since(start).Round(time.Millisecond), err)
}

// slowNet reads a request's body 1 KiB per 100 ms (on /stop, 1 KiB and
// then nothing until the request is canceled), then answers 200.
type slowNet struct{}

func (slowNet) RoundTrip(r *http.Request) (*http.Response, error) {
	buf := make([]byte, 1024)
	for {
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			break
		}
		if r.URL.Path == "/stop" {
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		select {
		case <-r.Context().Done():
			return nil, r.Context().Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
}

type neverEnding struct{}

func (neverEnding) Read(p []byte) (int, error) { return len(p), nil }
