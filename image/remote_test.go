package image

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

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
	p, err := ggcrlayout.FromPath(filepath.Join(fixtures.Dir(t), "busybox-multi"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	// The layout's index names one nested index: push that one.
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	top, err := idx.ImageIndex(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(host+"/c2vm/busybox:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{remote.WithAuth(&authn.Basic{Username: "u", Password: "p"})}
	if tlsServer {
		opts = append(opts, remote.WithTransport(srv.Client().Transport))
	}
	if err := remote.WriteIndex(ref, top, opts...); err != nil {
		t.Fatalf("pushing the fixture: %v", err)
	}
	d, err := top.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return host, d.String()
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

// isolateAuth points every credential file at an empty temp dir.
func isolateAuth(t *testing.T) string {
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
				t.Logf("%v", err)
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
