package vmimage

import (
	"fmt"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/c2vm/c2vm/vmdir"
)

// AnnotationVolume marks a data-disk image: its value is the VOLUME's
// path in the container.
const AnnotationVolume = "io.c2vm.volume"

// Volume is a VOLUME's data disk as an image of its own, in the
// containerDisk layout (the disk alone in /disk/, 107:107, 0440), which
// CDI imports into a DataVolume (a PersistentVolumeClaim): the data a
// VOLUME gets in the cluster outlives the VM, as the disk's own data
// partition, under KubeVirt's ephemeral overlay, does not.
type Volume struct {
	vmdir.VolumeInfo
	Image v1.Image
	Size  int64 // the disk file's size: the smallest claim that holds it
}

// volumes builds the data-disk images of vm's VOLUMEs.
func (b *builder) volumes(vm *vmdir.VM) ([]Volume, error) {
	var out []Volume
	for _, v := range vm.Volumes {
		a, ok := vm.Artifacts[v.Disk]
		if !ok || !vmdir.IsDataDisk(v.Disk) {
			return nil, fmt.Errorf("%s: volume %s: data disk %q is not an artifact", filepath.Join(vm.Dir, vmdir.ManifestFile), v.Path, v.Disk)
		}
		img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
		img, err := b.append(img, LayerDisk, []entry{dirEntry(DiskDir), fileEntry(DiskDir, vm.Dir, v.Disk, DiskMode, DiskOwner)})
		if err != nil {
			return nil, err
		}
		if img, err = b.config(img, &vm.Manifest); err != nil {
			return nil, err
		}
		img = mutate.Annotations(img, map[string]string{AnnotationVolume: v.Path}).(v1.Image)
		out = append(out, Volume{VolumeInfo: v, Image: img, Size: a.Size})
	}
	return out, nil
}

// VolumeResult is one pushed data-disk image.
type VolumeResult struct {
	Path   string `json:"path"`
	Label  string `json:"label"`
	Pinned string `json:"pinned"`
	Size   int64  `json:"size"`
}

// writeVolumes pushes the data-disk images before the VM, each by
// digest and, when r is a tag, as TAG-data-N too.
func writeVolumes(r name.Reference, vols []Volume, opts []remote.Option) ([]VolumeResult, error) {
	var out []VolumeResult
	for i, v := range vols {
		d, err := v.Image.Digest()
		if err != nil {
			return nil, err
		}
		var to name.Reference = r.Context().Digest(d.String())
		if t, ok := r.(name.Tag); ok {
			to = t.Context().Tag(fmt.Sprintf("%s-data-%d", t.TagStr(), i))
		}
		if err := remote.Write(to, v.Image, opts...); err != nil {
			return nil, fmt.Errorf("volume %s: %w", v.Path, err)
		}
		out = append(out, VolumeResult{Path: v.Path, Label: v.Label, Pinned: r.Context().Digest(d.String()).String(), Size: v.Size})
	}
	return out, nil
}
