package vmimage

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/c2vm/c2vm/vmdir"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// builder makes the images of one Build.
type builder struct {
	o        Options
	tmp      string
	uploaded *atomic.Int64
	first    *vmdir.Manifest // the first platform's manifest.json
	vols     []Volume        // the first platform's data disks
}

// image is the one-platform image of the VM directory vm.
func (b *builder) image(vm *vmdir.VM) (v1.Image, error) {
	m, dir := &vm.Manifest, vm.Dir
	if m.Disk == nil {
		return nil, fmt.Errorf("%s %w: convert with --disk qcow2 (KubeVirt boots the disk in a containerDisk's /disk/)", dir, ErrNoDisk)
	}
	if f := m.Disk.Format; f != "qcow2" && f != "raw" {
		return nil, fmt.Errorf("%s: a %s disk: KubeVirt boots qcow2 or raw; convert with --disk qcow2", dir, f)
	}
	if b.first == nil {
		b.first = m
		var err error
		if b.vols, err = b.volumes(vm); err != nil {
			return nil, err
		}
	}
	disk := []entry{dirEntry(DiskDir), fileEntry(DiskDir, dir, m.Disk.File, DiskMode, DiskOwner)}
	rest := []entry{dirEntry(ArtifactDir)}
	names := append(slices.Sorted(maps.Keys(m.Artifacts)), vmdir.ManifestFile)
	if m.Provenance != "" {
		// Written after manifest.json (which names it) and covering it:
		// pulled with the rest, c2vm verify checks the copy.
		names = append(names, m.Provenance)
	}
	slices.Sort(names)
	for _, n := range names {
		if n == m.Disk.File {
			continue
		}
		mode, err := fileMode(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		rest = append(rest, fileEntry(ArtifactDir, dir, n, mode, 0))
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	var err error
	for _, l := range []struct {
		role    string
		entries []entry
	}{{LayerDisk, disk}, {LayerArtifacts, rest}} {
		if img, err = b.append(img, l.role, l.entries); err != nil {
			return nil, err
		}
	}
	return b.finish(img, m)
}

// append adds one layer of entries, annotated with its role.
func (b *builder) append(img v1.Image, role string, entries []entry) (v1.Image, error) {
	bl, err := writeLayer(b.tmp, entries, b.o.Epoch)
	if err != nil {
		return nil, err
	}
	bl.meter, bl.uploaded = b.o.Meter, b.uploaded
	l, err := bl.layer()
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{
		Layer:       l,
		Annotations: map[string]string{AnnotationLayer: role},
		History:     v1.History{Created: v1.Time{Time: b.o.Epoch}, CreatedBy: "c2vm push: " + role, Comment: role},
	})
}

// finish sets the config and marks the manifest as a VM's.
func (b *builder) finish(img v1.Image, m *vmdir.Manifest) (v1.Image, error) {
	img, err := b.config(img, m)
	if err != nil {
		return nil, err
	}
	return mutate.Annotations(img, map[string]string{AnnotationVM: Version}).(v1.Image), nil
}

// config sets the config's platform, time and labels.
func (b *builder) config(img v1.Image, m *vmdir.Manifest) (v1.Image, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant, cf.OSVersion = m.Platform.OS, m.Platform.Architecture, m.Platform.Variant, m.Platform.OSVersion
	cf.Created = v1.Time{Time: b.o.Epoch}
	cf.Config.Labels = map[string]string{AnnotationVM: Version, "io.c2vm.version": m.C2VMVersion}
	return mutate.ConfigFile(img, cf)
}

// index is the index of each platform's image of a --platform all
// directory, carrying the top manifest.json (raw) as an annotation.
func (b *builder) index(multi *vmdir.Multi, raw []byte) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for i, p := range multi.Manifest.Platforms {
		img, err := b.image(multi.Platforms[i])
		if err != nil {
			return nil, err
		}
		pl := v1.Platform{OS: p.Platform.OS, Architecture: p.Platform.Architecture, Variant: p.Platform.Variant, OSVersion: p.Platform.OSVersion}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
	}
	return mutate.Annotations(idx, map[string]string{AnnotationVM: Version, AnnotationTopManifest: string(raw)}).(v1.ImageIndex), nil
}
