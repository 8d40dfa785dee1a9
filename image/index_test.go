package image

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/platforms"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/c2vm/c2vm/internal/fixtures"
)

// TestIndexPlatforms: an index lists its Linux platforms once each, in
// order, without BuildKit's attestations (by annotation or unknown/unknown)
// or other OSes; each platform resolves to its own image over the one
// store, which stays open when an image is closed.
func TestIndexPlatforms(t *testing.T) {
	l := newLayout(t)
	amdLayer := tarOf(map[string]string{"arch": "amd64"})
	armLayer := tarOf(map[string]string{"arch": "arm64"})
	amd := withPlatform(l.image("amd64", amdLayer), "amd64", "")
	arm := withPlatform(l.image("arm64", armLayer), "arm64", "v8")
	unknown := l.image("amd64")
	unknown.Platform = &ocispec.Platform{OS: "unknown", Architecture: "unknown"}
	annotated := l.image("amd64")
	annotated.Annotations = map[string]string{"vnd.docker.reference.type": "attestation-manifest"}
	windows := l.image("amd64")
	windows.Platform = &ocispec.Platform{OS: "windows", Architecture: "amd64"}
	inner := l.nestedIndex(amd, unknown, arm, annotated, windows)
	inner.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"}
	l.index(inner)

	x, err := OpenIndex(context.Background(), "oci:"+l.dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var got []string
	for _, p := range x.Platforms {
		got = append(got, platforms.Format(p))
	}
	if strings.Join(got, " ") != "linux/amd64 linux/arm64/v8" {
		t.Errorf("platforms %v; want linux/amd64 linux/arm64/v8", got)
	}
	if x.Digest != inner.Digest {
		t.Errorf("index digest %s; want the nested index's %s", x.Digest, inner.Digest)
	}
	for _, tc := range []struct {
		want  string
		i     int
		layer []byte
	}{
		{"linux/amd64", 0, amdLayer}, {"linux/arm64", 1, armLayer}, {"linux/arm64/v8", 1, armLayer}, {"linux/s390x", -1, nil},
	} {
		t.Run(tc.want, func(t *testing.T) {
			i, err := x.Match(tc.want)
			if tc.i < 0 {
				if !errors.Is(err, ErrNoPlatform) || !strings.Contains(err.Error(), "linux/amd64, linux/arm64/v8") {
					t.Errorf("got %v; want ErrNoPlatform listing the platforms", err)
				}
				return
			}
			if err != nil || i != tc.i {
				t.Fatalf("Match: %d, %v; want %d", i, err, tc.i)
			}
			img, err := x.Image(i)
			if err != nil {
				t.Fatal(err)
			}
			b, err := readLayer(t, img.Layers[0])
			if err != nil || !bytes.Equal(b, tc.layer) {
				t.Errorf("layer: %v", err)
			}
			img.Close() // the index's store stays open for the next
		})
	}
}

// TestIndexDockerArchive: a legacy archive is an index of its one image.
func TestIndexDockerArchive(t *testing.T) {
	tar := filepath.Join(fixtures.Dir(t), "busybox-arm64.docker.tar")
	x, err := OpenIndex(context.Background(), "docker-archive:"+tar, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if len(x.Platforms) != 1 || x.Platforms[0].Architecture != "arm64" || x.Digest != "" {
		t.Fatalf("platforms %v, digest %q; want the one linux/arm64 and no index", x.Platforms, x.Digest)
	}
	img, err := x.Image(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range img.Layers {
		layerNames(t, l)
	}
}

// TestIndexRemoteReadsOnce: every platform of a registry's multi-platform
// image through one Index pings and logs in once, fetches each manifest
// once, and each blob once — the layer both platforms share included.
func TestIndexRemoteReadsOnce(t *testing.T) {
	isolateAuth(t)
	host, gets := countedRegistry(t, basicAuth(registry.New(registry.Logger(log.New(io.Discard, "", 0))), "u", "p"))
	idxDigest := push(t, filepath.Join(fixtures.Dir(t), "busybox-multi"), host+"/c2vm/busybox:latest", remote.WithAuth(&authn.Basic{Username: "u", Password: "p"}))
	gets.reset()

	x, err := OpenIndex(context.Background(), "docker://"+host+"/c2vm/busybox:latest", Options{Creds: "u:p"})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Digest.String() != idxDigest || len(x.Platforms) != 2 {
		t.Fatalf("index %s with %v; want %s with two platforms", x.Digest, x.Platforms, idxDigest)
	}
	layers := map[string]int{} // how many platforms use each layer
	for i := range x.Platforms {
		img, err := x.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range img.Layers {
			layerNames(t, l)
			layers[l.Digest.String()]++
		}
		img.Close()
	}
	shared := 0
	for _, n := range layers {
		if n > 1 {
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("the fixture's platforms share no layer")
	}
	got := gets.all()
	for key, n := range got {
		if n != 1 {
			t.Errorf("GET %s %d times; want once (all: %v)", key, n, got)
		}
	}
	if got["/v2/"] != 1 {
		t.Errorf("pinged the registry %d times; want once", got["/v2/"])
	}
	for d := range layers {
		if got["blobs/"+d] != 1 {
			t.Errorf("layer %s fetched %d times; want once", d, got["blobs/"+d])
		}
	}
}

// TestIndexRemoteBlobsAtOnce: two platforms converted at once download
// their layers at once: the registry holds the first layer's GET until a
// second one arrives (a store downloading one blob at a time would wait
// the minute out), and each layer is still fetched once.
func TestIndexRemoteBlobsAtOnce(t *testing.T) {
	isolateAuth(t)
	var mu sync.Mutex
	second := make(chan struct{})
	armed, inFlight, most := false, 0, 0 // armed: the layers' GETs
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	host, gets := countedRegistry(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gate := armed && r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/")
		mu.Unlock()
		if gate {
			mu.Lock()
			inFlight++
			most = max(most, inFlight)
			if inFlight == 2 {
				close(second)
			}
			mu.Unlock()
			select {
			case <-second:
			case <-time.After(time.Minute):
			}
			defer func() { mu.Lock(); inFlight--; mu.Unlock() }()
		}
		reg.ServeHTTP(w, r)
	}))
	push(t, filepath.Join(fixtures.Dir(t), "busybox-multi"), host+"/c2vm/busybox:latest")
	x, err := OpenIndex(context.Background(), "docker://"+host+"/c2vm/busybox:latest", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	var ls []Layer
	for i := range x.Platforms { // the manifests and configs, one after the other
		img, err := x.Image(i)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, img.Layers[0]) // each arch's own busybox
	}
	if ls[0].Digest == ls[1].Digest {
		t.Fatal("the fixture's arches share their first layer")
	}
	gets.reset()
	mu.Lock()
	armed = true
	mu.Unlock()
	var wg sync.WaitGroup
	for _, l := range ls {
		wg.Go(func() {
			rc, err := l.Open()
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
				rc.Close()
			}
			if err != nil {
				t.Errorf("layer %s: %v", l.Digest, err)
			}
		})
	}
	wg.Wait()
	if most < 2 {
		t.Errorf("at most %d blob downloads at once; want the two layers' together", most)
	}
	for d, n := range gets.blobs() {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", d, n)
		}
	}
}

// getCounter counts a test registry's GET requests: "blobs/DIGEST",
// "manifests/TAG-OR-DIGEST", else the path ("/v2/", the ping).
type getCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *getCounter) reset() { c.mu.Lock(); clear(c.n); c.mu.Unlock() }

// all returns the counts; blobs only the blobs' (by digest).
func (c *getCounter) all() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

func (c *getCounter) blobs() map[string]int {
	out := map[string]int{}
	for k, n := range c.all() {
		if d, ok := strings.CutPrefix(k, "blobs/"); ok {
			out[d] = n
		}
	}
	return out
}

// countedRegistry serves h on a test server counting its GETs; it
// returns HOST and the counter.
func countedRegistry(t testing.TB, h http.Handler) (string, *getCounter) {
	c := &getCounter{n: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Path
		for _, kind := range []string{"/blobs/", "/manifests/"} {
			if _, ref, ok := strings.Cut(key, kind); ok {
				key = kind[1:] + ref
			}
		}
		if r.Method == http.MethodGet {
			c.mu.Lock()
			c.n[key]++
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), c
}

// TestIndexRemoteSingleManifest: a registry reference naming one image
// manifest (no index) lists its one platform, and the digest recorded is
// that manifest's, the one the registry has, not a made-up index's.
func TestIndexRemoteSingleManifest(t *testing.T) {
	isolateAuth(t)
	host, manifest := pushLayout(t, filepath.Join(fixtures.Dir(t), "busybox-arm64"), "c2vm/one:latest")
	x, err := OpenIndex(context.Background(), "docker://"+host+"/c2vm/one:latest", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if x.Digest.String() != manifest || len(x.Platforms) != 1 || x.Platforms[0].Architecture != "arm64" {
		t.Fatalf("digest %s with %v; want the manifest's %s and linux/arm64", x.Digest, x.Platforms, manifest)
	}
}
