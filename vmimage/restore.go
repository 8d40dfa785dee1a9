package vmimage

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/vmdir"
)

// Restore writes the VM directory of a one-platform VM image to target,
// atomically (a temp dir renamed into place when complete): every blob's
// digest, every layer's diff ID and every artifact's sha256 and size are
// checked, and nothing but the VM's files is accepted.
func Restore(img v1.Image, target string) error {
	return staged(target, func(dir string) error {
		if err := unpack(img, dir); err != nil {
			return err
		}
		vm, err := vmdir.ReadExact(dir)
		if err != nil {
			return err
		}
		return onlyArtifacts(vm)
	})
}

// RestoreIndex writes the VM directory of every platform of a VM index
// to target: each platform's directory and the top manifest.json.
func RestoreIndex(idx v1.ImageIndex, target string) error {
	return staged(target, func(dir string) error { return unpackIndex(idx, dir) })
}

func staged(target string, fill func(dir string) error) error {
	st, err := convert.NewStage(target)
	if err != nil {
		return err
	}
	defer st.Abort()
	if err := fill(st.Dir()); err != nil {
		return err
	}
	return st.Commit()
}

// checkVM refuses what is not a c2vm VM image (or index) of this layout.
func checkVM(annotations map[string]string) error {
	switch v := annotations[AnnotationVM]; v {
	case Version:
		return nil
	case "":
		return fmt.Errorf("%w; convert it with `c2vm convert`", ErrNotVM)
	default:
		return fmt.Errorf("a c2vm VM image of layout version %q (this c2vm reads %s): upgrade c2vm", v, Version)
	}
}

// vmManifest is img's manifest, when img is a VM image.
func vmManifest(img v1.Image) (*v1.Manifest, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	return m, checkVM(m.Annotations)
}

// vmIndexManifest is idx's manifest, when idx is a VM index.
func vmIndexManifest(idx v1.ImageIndex) (*v1.IndexManifest, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	return im, checkVM(im.Annotations)
}

func unpack(img v1.Image, dir string) error {
	m, err := vmManifest(img)
	if err != nil {
		return err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if len(m.Layers) != 2 || len(cf.RootFS.DiffIDs) != 2 {
		return fmt.Errorf("a VM image has 2 layers (disk, artifacts); this one %d, with %d diff IDs", len(m.Layers), len(cf.RootFS.DiffIDs))
	}
	prefixes := []string{DiskDir, ArtifactDir}
	for i, desc := range m.Layers {
		if role, want := desc.Annotations[AnnotationLayer], []string{LayerDisk, LayerArtifacts}[i]; role != want {
			return fmt.Errorf("layer %d is %q, want %q", i, role, want)
		}
		l, err := img.LayerByDigest(desc.Digest)
		if err != nil {
			return err
		}
		if err := extract(l, desc.Digest, cf.RootFS.DiffIDs[i], prefixes[i], dir); err != nil {
			return fmt.Errorf("layer %s: %w", desc.Digest, err)
		}
	}
	return nil
}

// onlyArtifacts checks that a restored directory holds a disk, and
// nothing but the artifacts its manifest.json lists and itself.
func onlyArtifacts(vm *vmdir.VM) error {
	if vm.Disk == nil {
		return fmt.Errorf("%s names no disk", vmdir.ManifestFile)
	}
	entries, err := os.ReadDir(vm.Dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if _, ok := vm.Artifacts[e.Name()]; !ok && e.Name() != vmdir.ManifestFile && e.Name() != vm.Provenance {
			return fmt.Errorf("%s: not an artifact %s lists", e.Name(), vmdir.ManifestFile)
		}
	}
	return nil
}

// extract writes a layer's files (prefix/NAME, regular files only) into
// dir, checking the blob's digest and the tar's diff ID.
func extract(l v1.Layer, digest, diffID v1.Hash, prefix, dir string) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	dh, ih := sha256.New(), sha256.New()
	compressed := io.TeeReader(rc, dh)
	zr, err := gzip.NewReader(compressed)
	if err != nil {
		return fmt.Errorf("not gzip: %w", err)
	}
	tarStream := io.TeeReader(zr, ih)
	if err := extractTar(tar.NewReader(tarStream), prefix, dir); err != nil {
		return err
	}
	// The rest of the tar (padding) and of the blob count too.
	if _, err := io.Copy(io.Discard, tarStream); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, compressed); err != nil {
		return err
	}
	if got := hashOf(dh); got != digest {
		return fmt.Errorf("digest mismatch: the blob has %s", got)
	}
	if got := hashOf(ih); got != diffID {
		return fmt.Errorf("diff ID mismatch: the config says %s, the layer has %s", diffID, got)
	}
	return nil
}

func extractTar(tr *tar.Reader, prefix, dir string) error {
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag == tar.TypeDir && strings.TrimSuffix(h.Name, "/") == prefix {
			continue
		}
		p, name := path.Split(h.Name)
		if h.Typeflag != tar.TypeReg || p != prefix+"/" || !vmdir.IsPlainName(name) {
			return fmt.Errorf("unexpected entry %q (type %c): a VM image holds only files in /%s/", h.Name, h.Typeflag, prefix)
		}
		if err := writeFile(filepath.Join(dir, name), tr, h.Mode); err != nil {
			return err
		}
	}
}

func writeFile(p string, r io.Reader, mode int64) error {
	perm := os.FileMode(0o644)
	if mode&0o100 != 0 {
		perm = 0o755
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(p, perm) // whatever the umask
	}
	return err
}

func unpackIndex(idx v1.ImageIndex, dir string) error {
	im, err := vmIndexManifest(idx)
	if err != nil {
		return err
	}
	raw := im.Annotations[AnnotationTopManifest]
	var top vmdir.MultiManifest
	if err := json.Unmarshal([]byte(raw), &top); err != nil {
		return fmt.Errorf("the index's top %s: %w", vmdir.ManifestFile, err)
	}
	if len(top.Platforms) != len(im.Manifests) {
		return fmt.Errorf("the index has %d manifests for the %d platforms of its %s", len(im.Manifests), len(top.Platforms), vmdir.ManifestFile)
	}
	for _, p := range top.Platforms {
		if err := unpackPlatform(idx, im, p, dir); err != nil {
			return fmt.Errorf("%s: %w", platforms.Format(p.Platform), err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, vmdir.ManifestFile), []byte(raw), 0o644); err != nil {
		return err
	}
	// Each platform's manifest.json against the top one, every artifact
	// against its own, and nothing else in any directory.
	multi, err := vmdir.ReadMultiExact(dir)
	if err != nil {
		return err
	}
	for _, vm := range multi.Platforms {
		if err := onlyArtifacts(vm); err != nil {
			return err
		}
	}
	return nil
}

func unpackPlatform(idx v1.ImageIndex, im *v1.IndexManifest, p vmdir.PlatformEntry, dir string) error {
	if !vmdir.IsPlainName(p.Dir) {
		return fmt.Errorf("directory %q is not a file name", p.Dir)
	}
	desc, err := findPlatform(im, p.Platform)
	if err != nil {
		return err
	}
	img, err := idx.Image(desc.Digest)
	if err != nil {
		return err
	}
	sub := filepath.Join(dir, p.Dir)
	if err := os.Mkdir(sub, 0o755); err != nil {
		return err
	}
	return unpack(img, sub)
}
