// Package vmimage makes an OCI image of a VM directory, and a VM directory
// of such an image: values, then sinks. Build gives a go-containerregistry
// v1.Image (one platform) or v1.ImageIndex (a --platform all directory);
// Push writes it with remote.Write under the keychain pulls use; Pull and
// Restore read one back, every digest and sha256 checked.
//
// Each platform's image is a KubeVirt containerDisk: its first layer holds
// the UEFI disk (convert --disk) as the only file in /disk/, owned 107:107
// (the qemu user of KubeVirt's virt-launcher) with mode 0440, as KubeVirt's
// own containerdisks are built (`ADD --chown=107:107 disk.qcow2 /disk/`).
// Its second layer holds every other artifact and manifest.json in /c2vm/,
// outside what KubeVirt reads, so one tag pins the whole VM and Restore
// gives the directory back byte for byte. Layers rather than an OCI 1.1
// referrer: one digest, one pull, one garbage-collection root on every
// registry (Debian's docker-registry has no referrers API), and a copy
// tool (skopeo copy, crane cp) moves all of it; the cost is that a node
// pulls the second layer too. Referrers stay for what describes the VM
// rather than is it (SBOM, provenance: WriteReferrers).
//
//	vm, err := vmimage.Build("out", vmimage.Options{})
//	defer vm.Close()
//	err = remote.Write(ref, vm.Image, opts...)
package vmimage

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/c2vm/c2vm/convert"
	"github.com/c2vm/c2vm/vmdir"
)

// Annotations and layout of a c2vm VM image.
const (
	// AnnotationVM marks a VM image's manifest; its value is the layout
	// version (Version).
	AnnotationVM = "io.c2vm.vm"
	// AnnotationLayer says what a layer holds: LayerDisk or LayerArtifacts.
	AnnotationLayer = "io.c2vm.layer"
	// AnnotationTopManifest, on the index of several platforms, is the
	// top directory's manifest.json, byte for byte.
	AnnotationTopManifest = "io.c2vm.manifest"
	Version               = "1"
	LayerDisk             = "disk"
	LayerArtifacts        = "artifacts"
	// DiskDir is where KubeVirt looks for a containerDisk's one file
	// (kubevirt pkg/container-disk: "/disk").
	DiskDir = "disk"
	// ArtifactDir holds the rest of the VM directory.
	ArtifactDir = "c2vm"
	// DiskOwner is the uid and gid of KubeVirt's qemu user (107).
	DiskOwner = 107
	// DiskMode is the disk file's mode in KubeVirt's containerdisks.
	DiskMode = 0o440
)

// Errors a caller may test.
var (
	ErrNoDisk = errors.New("has no disk")
	ErrNotVM  = errors.New("is not a c2vm VM image")
)

// Options are Build's: the zero value is the default.
type Options struct {
	// Epoch is every timestamp written (layers, config):
	// SOURCE_DATE_EPOCH; zero is the Unix epoch.
	Epoch time.Time
	// Meter, if set, shows each blob as it is uploaded.
	Meter convert.Meter
	// Referrers are pushed after the VM as OCI 1.1 referrers of its
	// manifest (or index): what describes the VM rather than is it
	// (SBOM, provenance). WriteReferrers writes them.
	Referrers []v1.Image
}

// VM is a built image (one platform) or index (several), whose layers
// are files in a temp dir until Close.
type VM struct {
	Image v1.Image      // nil for several platforms
	Index v1.ImageIndex // nil for one platform
	// Platforms are the platforms' manifests, one per platform.
	Platforms []v1.Descriptor
	// Manifest is the (first platform's) manifest.json.
	Manifest *vmdir.Manifest
	// Volumes are the (first platform's) VOLUMEs' data-disk images.
	Volumes  []Volume
	uploaded *atomic.Int64
	tmp      string
}

// Taggable is what remote.Write/WriteIndex or remote.Put take.
func (v *VM) Taggable() remote.Taggable {
	if v.Index != nil {
		return v.Index
	}
	return v.Image
}

// Digest is the image's or the index's digest.
func (v *VM) Digest() (v1.Hash, error) {
	if v.Index != nil {
		return v.Index.Digest()
	}
	return v.Image.Digest()
}

// Uploaded is how many layer bytes have been read for upload so far:
// a registry that has a layer already is never sent it.
func (v *VM) Uploaded() int64 { return v.uploaded.Load() }

// Close removes the layer files.
func (v *VM) Close() error { return os.RemoveAll(v.tmp) }

// Build makes the image of the VM directory dir: one platform's output,
// or a --platform all top directory (an index of each platform's image).
func Build(dir string, o Options) (*VM, error) {
	tmp, err := os.MkdirTemp("", "c2vm-push-")
	if err != nil {
		return nil, err
	}
	vm := &VM{uploaded: &atomic.Int64{}, tmp: tmp}
	if err := vm.build(dir, o); err != nil {
		vm.Close()
		return nil, err
	}
	return vm, nil
}

func (vm *VM) build(dir string, o Options) error {
	if o.Epoch.IsZero() {
		o.Epoch = time.Unix(0, 0).UTC()
	}
	b := &builder{o: o, tmp: vm.tmp, uploaded: vm.uploaded}
	defer func() { vm.Manifest, vm.Volumes = b.first, b.vols }()
	one, err := vmdir.ReadExact(dir)
	switch {
	case err == nil:
		vm.Image, err = b.image(one)
		return err
	case !errors.Is(err, vmdir.ErrMultiPlatform):
		return err
	}
	multi, err := vmdir.ReadMultiExact(dir)
	if err != nil {
		return err
	}
	// The top manifest.json, byte for byte: ReadMulti checked it.
	raw, err := os.ReadFile(filepath.Join(multi.Dir, vmdir.ManifestFile))
	if err != nil {
		return err
	}
	if vm.Index, err = b.index(multi, raw); err != nil {
		return err
	}
	m, err := vm.Index.IndexManifest()
	if err != nil {
		return err
	}
	vm.Platforms = m.Manifests
	return nil
}
