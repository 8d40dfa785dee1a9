package image

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

// oneLine fails t when err's message spans lines (errors reach the CLI's
// one-line report).
func oneLine(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), "\n") {
		t.Fatalf("multi-line error %q", err)
	}
}

// FuzzManifestConfig: an image manifest and its config, as read through
// an OCI layout's store (index.json → manifest → config, every digest
// checked), give an image whose layers the config's diff_ids match, or a
// one-line error; never a panic.
func FuzzManifestConfig(f *testing.F) {
	layer := tarOf(map[string]string{"a": "b"})
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"CONFIG","size":CSIZE},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"LAYER","size":LSIZE}]}`),
		[]byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["LAYER"]}}`))
	f.Add([]byte(`{"config":{"digest":"CONFIG","size":CSIZE},"layers":[{"digest":"LAYER","size":LSIZE},{"digest":"LAYER","size":LSIZE}]}`),
		[]byte(`{"rootfs":{"diff_ids":["sha256:x"]}}`))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		ld := digest.FromBytes(layer)
		subst := func(b []byte) []byte {
			b = bytes.ReplaceAll(b, []byte("LAYER"), []byte(ld.String()))
			return bytes.ReplaceAll(b, []byte("LSIZE"), []byte(fmt.Sprint(len(layer))))
		}
		config = subst(config)
		cd := digest.FromBytes(config)
		manifest = bytes.ReplaceAll(subst(manifest), []byte("CONFIG"), []byte(cd.String()))
		manifest = bytes.ReplaceAll(manifest, []byte("CSIZE"), []byte(fmt.Sprint(len(config))))
		md := digest.FromBytes(manifest)
		idx := fmt.Sprintf(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"size":%d}]}`, md, len(manifest))
		s := memStore{"oci-layout": []byte(`{}`), "index.json": []byte(idx),
			"blobs/sha256/" + md.Encoded(): manifest, "blobs/sha256/" + cd.Encoded(): config, "blobs/sha256/" + ld.Encoded(): layer}
		img, err := resolveOCI(s, "", Options{})
		oneLine(t, err)
		if err != nil {
			return
		}
		if img.ManifestDigest != md || img.ConfigDigest != cd {
			t.Fatalf("image %s config %s, want %s %s", img.ManifestDigest, img.ConfigDigest, md, cd)
		}
		if ids := img.Config.RootFS.DiffIDs; len(ids) != 0 && len(ids) != len(img.Layers) {
			t.Fatalf("%d layers, %d diff_ids", len(img.Layers), len(ids))
		}
	})
}

// FuzzDockerArchiveConfig: a docker-archive's manifest.json and config
// give an image with one diff_id per layer, or a one-line error.
func FuzzDockerArchiveConfig(f *testing.F) {
	layer := tarOf(map[string]string{"a": "b"})
	f.Add([]byte(`[{"Config":"config.json","RepoTags":["a:1"],"Layers":["layer.tar"]}]`),
		[]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["LAYER"]}}`))
	f.Add([]byte(`[{"Config":"config.json","Layers":["layer.tar","layer.tar"]}]`), []byte(`{"rootfs":{"diff_ids":[]}}`))
	f.Fuzz(func(t *testing.T, manifest, config []byte) {
		config = bytes.ReplaceAll(config, []byte("LAYER"), []byte(digest.FromBytes(layer).String()))
		s := memStore{"manifest.json": manifest, "config.json": config, "layer.tar": layer}
		img, err := resolveDocker(s, "", Options{})
		oneLine(t, err)
		if err != nil {
			return
		}
		if len(img.Layers) != len(img.Config.RootFS.DiffIDs) {
			t.Fatalf("%d layers, %d diff_ids", len(img.Layers), len(img.Config.RootFS.DiffIDs))
		}
		for _, l := range img.Layers {
			if checkDigest(l.DiffID) != nil {
				t.Fatalf("layer with diff_id %q", l.DiffID)
			}
		}
	})
}

// FuzzAuthFile: any containers auth file gives credentials, anonymous
// access or a one-line error naming the file, and never puts a password
// in an error.
func FuzzAuthFile(f *testing.F) {
	secret := base64.StdEncoding.EncodeToString([]byte("user:s3cret"))
	f.Add([]byte(`{"auths":{"registry.example:5000/ns":{"auth":"`+secret+`"}}}`), "registry.example:5000/ns/repo")
	f.Add([]byte(`{"auths":{"docker.io":{"auth":"`+secret+`"},"https://index.docker.io/v1/":{"identitytoken":"tok"}}}`), "index.docker.io/library/busybox")
	f.Add([]byte(`{"auths":{"r":{"auth":"bm8tY29sb24="}}}`), "r/x")
	f.Fuzz(func(t *testing.T, b []byte, repo string) {
		registry, _, _ := strings.Cut(repo, "/")
		a, err := lookupAuth(b, repo, registry, "auth.json")
		oneLine(t, err)
		if err != nil {
			if !strings.Contains(err.Error(), "auth file auth.json") || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if _, err := a.Authorization(); err != nil {
			t.Fatalf("authenticator: %v", err)
		}
	})
}
