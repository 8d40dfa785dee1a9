package image

import (
	"archive/tar"
	"errors"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/c2vm/c2vm/internal/fixtures"
	"github.com/opencontainers/go-digest"
)

// TestRealFixtures opens every form of the images umoci and skopeo made
// (testdata/README.md): the OCI layout, the docker-archive, the zstd
// oci-archive and the nested multi-platform layout must give the same
// layers (by DiffID), the right platform and the config umoci wrote, and
// every layer must stream to its end with digests verified.
func TestRealFixtures(t *testing.T) {
	dir := fixtures.Dir(t)
	for _, arch := range []struct{ name, platform, want string }{
		{"amd64", "linux/amd64", "linux/amd64"},
		{"arm64", "linux/arm64", "linux/arm64/v8"},
	} {
		base := filepath.Join(dir, "busybox-"+arch.name)
		ref, want := openFixture(t, "oci:"+base, Options{}, arch.name)
		forms := []struct{ ref, platform string }{
			{base, ""},
			{"oci:" + base + ":latest", ""},
			{"docker-archive:" + base + ".docker.tar", ""},
			{base + ".docker.tar", ""},
			{"docker-archive:" + base + ".docker.tar:c2vm/busybox:" + arch.name, ""},
			{"oci-archive:" + base + ".oci-zstd.tar", ""},
			{"oci-archive:" + base + ".oci-zstd.tar:latest", ""},
			{filepath.Join(dir, "busybox-multi"), arch.platform},
			{"oci:" + filepath.Join(dir, "busybox-multi") + ":latest", arch.platform},
		}
		for _, f := range forms {
			t.Run(strings.ReplaceAll(f.ref, dir+"/", "")+"@"+f.platform, func(t *testing.T) {
				_, got := openFixture(t, f.ref, Options{Platform: f.platform}, arch.name)
				if !slices.Equal(got, want) {
					t.Errorf("%s: diff_ids %v, %s gives %v", f.ref, got, ref, want)
				}
			})
		}
	}
}

// openFixture opens ref, checks platform, config and layer streams, and
// returns the ref and the layers' DiffIDs.
func openFixture(t *testing.T, ref string, opts Options, arch string) (string, []digest.Digest) {
	t.Helper()
	img, err := Open(ref, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", ref, err)
	}
	defer img.Close()
	if img.Platform.OS != "linux" || img.Platform.Architecture != arch {
		t.Errorf("%s: platform %+v, want linux/%s", ref, img.Platform, arch)
	}
	c := img.Config.Config
	if c.User != "app" || c.WorkingDir != "/home/app" || !slices.Contains(c.Env, "FOO=bar") || len(c.Cmd) == 0 || c.Cmd[0] != "/bin/sh" {
		t.Errorf("%s: config %+v", ref, c)
	}
	if len(img.Layers) != 3 {
		t.Fatalf("%s: %d layers, want 3", ref, len(img.Layers))
	}
	var ids []digest.Digest
	names := map[string]bool{}
	for _, l := range img.Layers {
		if l.DiffID == "" {
			t.Errorf("%s: layer %s without diff_id", ref, l.Digest)
		}
		ids = append(ids, l.DiffID)
		for _, n := range layerNames(t, l) {
			names[n] = true
		}
	}
	for _, n := range []string{"bin/busybox", "etc/hard-b", "devnode/null", ".wh.gone.txt", "opq/.wh..wh..opq", "etc/motd"} {
		if !names[n] {
			t.Errorf("%s: no %s in any layer", ref, n)
		}
	}
	return ref, ids
}

// layerNames reads a layer's tar to its end marker, then drains the stream
// as the flattener does, so the digests are checked at EOF.
func layerNames(t *testing.T, l Layer) []string {
	t.Helper()
	rc, err := l.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("layer %s: %v", l.Digest, err)
		}
		names = append(names, strings.TrimPrefix(h.Name, "./"))
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		t.Fatalf("layer %s: %v", l.Digest, err)
	}
	return names
}

// TestRealFixtureNoPlatform: asking the multi-platform layout for an arch
// it lacks fails naming what it offers.
func TestRealFixtureNoPlatform(t *testing.T) {
	dir := fixtures.Dir(t)
	_, err := Open(filepath.Join(dir, "busybox-multi"), Options{Platform: "linux/s390x"})
	if !errors.Is(err, ErrNoPlatform) || !strings.Contains(err.Error(), "linux/amd64") || !strings.Contains(err.Error(), "linux/arm64/v8") {
		t.Fatalf("got %v, want ErrNoPlatform listing linux/amd64 and linux/arm64/v8", err)
	}
}
